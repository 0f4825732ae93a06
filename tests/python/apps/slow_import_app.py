"""An app whose import takes a while (as a large Django project's can): a worker is still loading
it when a stop signal arrives."""

import time

time.sleep(1.5)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"loaded\n"]
