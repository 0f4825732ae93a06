"""A minimal Django project that tests/python/test_django.py serves through tern's WSGI bridge."""
