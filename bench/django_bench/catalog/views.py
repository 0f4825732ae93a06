"""The measured view: reads 20 rows through the ORM and renders them with a template."""

from django.shortcuts import render

from catalog.models import Product


def product_list(request):
    products = Product.objects.all()[:20]
    return render(request, "catalog/products.html", {"products": products})
