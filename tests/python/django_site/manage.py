"""Django's command line for the test project (``collectstatic``, ``migrate``, ``loaddata``, ``createsuperuser``), runnable from any folder."""

import os
import sys

if __name__ == "__main__":
    # The project package is django_site/, so its parent folder (tests/python) must be importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
