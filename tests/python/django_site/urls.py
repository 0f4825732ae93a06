"""URLs of the test Django project: the admin plus the two pages of the ``pages`` app."""

from django.contrib import admin
from django.urls import path

from django_site.pages import views

urlpatterns = [
    path("", views.home, name="home"),
    path("echo/", views.echo, name="echo"),
    path("admin/", admin.site.urls),
]
