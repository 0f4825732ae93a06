"""A minimal Django project that tests/python/test_django.py serves through tern's WSGI bridge and
tests/python/test_django_asgi.py through its ASGI bridge (django_site/asgi.py)."""
