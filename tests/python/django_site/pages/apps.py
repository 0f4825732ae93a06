"""App configuration of ``django_site.pages`` (its templates live in pages/templates/pages/)."""

from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "django_site.pages"
