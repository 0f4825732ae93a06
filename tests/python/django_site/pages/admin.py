"""The admin of ``django_site.pages``: notes are listed and edited there."""

from django.contrib import admin

from django_site.pages.models import Note


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "position"]
