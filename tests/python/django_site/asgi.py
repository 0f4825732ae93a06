"""The ASGI entry point tern loads: ``tern serve django_site.asgi:application`` (Django's own
handler, nothing of tern's: its ``__call__`` is a coroutine function, so tern takes it as ASGI)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")

application = get_asgi_application()
