"""URLs of the test Django project: the admin, the two pages of the ``pages`` app, and its async
views (served under ASGI by test_django_asgi.py)."""

from django.contrib import admin
from django.urls import path

from django_site.pages import views

urlpatterns = [
    path("", views.home, name="home"),
    path("echo/", views.echo, name="echo"),
    path("notes/", views.notes, name="notes"),
    path("notes/page/", views.notes_page, name="notes-page"),
    path("digest/", views.digest, name="digest"),
    path("stream/<slug:token>/", views.stream, name="stream"),
    path("stream/<slug:token>/release/", views.release, name="release"),
    path("streams/", views.streams, name="streams"),
    path("admin/", admin.site.urls),
]
