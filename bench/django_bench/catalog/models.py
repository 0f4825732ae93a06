"""A product row, with the kinds of columns a real table has (text, decimal, integer, time)."""

from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    sku = models.CharField(max_length=20, unique=True)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    stock = models.IntegerField()
    updated = models.DateTimeField()

    class Meta:
        ordering = ["id"]
