"""The catalog app: one model, one view, one template."""

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
