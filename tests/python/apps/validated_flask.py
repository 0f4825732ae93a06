"""flask_app wrapped in wsgiref.validate.validator, with its warnings turned into errors."""

import warnings
from wsgiref.validate import WSGIWarning, validator

import flask_app

warnings.simplefilter("error", WSGIWarning)

application = validator(flask_app.app)
