"""pep_app wrapped in wsgiref.validate.validator, with its warnings turned into errors.

Whatever the validator finds wrong (with the server's environ, start_response, write(), wsgi.input,
or close() never called) raises an AssertionError or a WSGIWarning, which ends up in the server log;
the ``serve_app`` fixture fails the test when it sees one there.
"""

import warnings
from wsgiref.validate import WSGIWarning, validator

import pep_app

warnings.simplefilter("error", WSGIWarning)

application = validator(pep_app.application)
