"""The benchmark's one page: the product list."""

from django.urls import path

from catalog import views

urlpatterns = [path("products/", views.product_list, name="product-list")]
