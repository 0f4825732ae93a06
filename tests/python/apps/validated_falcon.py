"""falcon_app wrapped in wsgiref.validate.validator, with its warnings turned into errors."""

import warnings
from wsgiref.validate import WSGIWarning, validator

import falcon_app

warnings.simplefilter("error", WSGIWarning)

application = validator(falcon_app.app)
