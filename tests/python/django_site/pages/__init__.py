"""The one app of the test Django project: a template page and a CSRF-protected form."""
