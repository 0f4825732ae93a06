"""Migrations of ``django_site.pages`` (the ``Note`` table), applied by ``manage.py migrate``."""
