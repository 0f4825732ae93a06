"""The WSGI entry point every server loads: `django_bench.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_bench.settings")
application = get_wsgi_application()
