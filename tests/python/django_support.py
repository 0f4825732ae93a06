"""What the Django tests share (test_django.py under WSGI, test_django_asgi.py under ASGI): the
project's files in a temporary folder, ``manage.py`` commands, tern started on the project, and the
CSRF token of a rendered form."""

import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from conftest import Server

HERE = os.path.dirname(os.path.abspath(__file__))
MANAGE = os.path.join(HERE, "django_site", "manage.py")
TERN = os.path.join(os.path.dirname(sys.executable), "tern")
TIMEOUT = 10  # seconds, for every request


@dataclass
class Site:
    """The running Django site: where it listens and where its collected static files are."""

    base_url: str
    static_root: str
    server: Server = None

    def url(self, path):
        return self.base_url + path

    @property
    def address(self):
        return self.server.address

    def explain(self, response):
        """What to print when a check on ``response`` fails: the answer and tern's log so far."""
        log = "".join(self.server.log_lines) if self.server else ""
        return f"{response.status_code} {response.reason}\n{response.text[:2000]}\n--- tern log ---\n{log}"


def django_environment(tmp_dir):
    """Where the project keeps its files (read by django_site/settings.py), for manage.py and tern."""
    return {
        "DJANGO_SETTINGS_MODULE": "django_site.settings",
        "DJANGO_SITE_STATIC_ROOT": str(tmp_dir / "static"),
        "DJANGO_SITE_DB_PATH": str(tmp_dir / "db.sqlite3"),
    }


def manage(env, *args, extra_env=None):
    """Runs ``manage.py ARGS`` with the project's environment; fails the test when it fails."""
    result = subprocess.run(
        [sys.executable, MANAGE, *args],
        env={**os.environ, **env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def start_site(env, app, *extra):
    """Starts tern on ``app`` of the project, with the collected static files under /static/."""
    argv = [
        TERN, "serve", app,
        "--chdir", HERE, "--pythonpath", HERE,
        "-r", env["DJANGO_SITE_STATIC_ROOT"], "--static-url", "/static/",
        *extra,
        "--port", "0",
    ]
    # Server passes its own os.environ on to tern; Popen copies it at start, so it is restored at once.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        server = Server(argv)
    host, port = server.address
    return Site(f"http://{host}:{port}", env["DJANGO_SITE_STATIC_ROOT"], server)


def csrf_token_in(html):
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html
    return match.group(1)
