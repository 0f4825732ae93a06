"""The one app of the test Django project: a template page, a CSRF-protected form, the ``Note``
model with its admin, and async views reading the notes."""
