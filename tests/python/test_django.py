"""A real Django project (tests/python/django_site) behind the installed ``tern``: the WSGI bridge runs
Django's views, CSRF middleware and admin, while tern's own static server answers under /static/
from the folder ``manage.py collectstatic`` filled.

One server is started for the whole module; the last test stops it and checks the exit code."""

import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
import requests

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


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp_dir = tmp_path_factory.mktemp("django")
    env = django_environment(tmp_dir)
    # No `migrate`: none of the pages below touches the database (anonymous sessions are never saved).
    collect = subprocess.run(
        [sys.executable, MANAGE, "collectstatic", "--noinput", "--verbosity", "0"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collect.returncode == 0, collect.stdout + collect.stderr

    argv = [
        TERN, "serve", "django_site.wsgi:application",
        "--chdir", HERE, "--pythonpath", HERE,
        "-r", env["DJANGO_SITE_STATIC_ROOT"], "--static-url", "/static/",
        "--port", "0",
    ]
    # Server passes its own os.environ on to tern; Popen copies it at start, so it is restored at once.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        server = Server(argv)
    try:
        host, port = server.address
        yield Site(f"http://{host}:{port}", env["DJANGO_SITE_STATIC_ROOT"], server)
    finally:
        server.stop()


def csrf_token_in(html):
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_template_view_renders(site):
    response = requests.get(site.url("/"), timeout=TIMEOUT)
    assert response.status_code == 200, site.explain(response)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Hello from Django on tern</h1>" in response.text
    assert "rendered by a Django template for GET /." in response.text


def test_unknown_path_gets_djangos_404(site):
    response = requests.get(site.url("/no-such-page/"), timeout=TIMEOUT)
    assert response.status_code == 404, site.explain(response)
    assert "Not Found" in response.text


def test_form_post_with_csrf_token_echoes_the_field(site):
    with requests.Session() as session:
        form = session.get(site.url("/echo/"), timeout=TIMEOUT)
        assert form.status_code == 200, site.explain(form)
        cookie = session.cookies.get("csrftoken")
        assert cookie, form.headers
        token = csrf_token_in(form.text)
        answer = session.post(
            site.url("/echo/"),
            data={"csrfmiddlewaretoken": token, "message": "tern & django ✓"},
            headers={"Referer": site.url("/echo/")},
            timeout=TIMEOUT,
        )
    assert answer.status_code == 200, site.explain(answer)
    assert '<output id="echoed">tern &amp; django ✓</output>' in answer.text


def test_form_post_without_csrf_token_is_forbidden(site):
    with requests.Session() as session:
        form = session.get(site.url("/echo/"), timeout=TIMEOUT)
        assert session.cookies.get("csrftoken"), form.headers
        # The cookie goes along, the form field does not.
        answer = session.post(site.url("/echo/"), data={"message": "no token"}, timeout=TIMEOUT)
    assert answer.status_code == 403, site.explain(answer)
    assert "CSRF verification failed" in answer.text
    assert "no token" not in answer.text

    # Neither cookie nor field.
    bare = requests.post(site.url("/echo/"), data={"message": "no token"}, timeout=TIMEOUT)
    assert bare.status_code == 403, site.explain(bare)


def test_admin_login_page_renders(site):
    response = requests.get(site.url("/admin/login/"), timeout=TIMEOUT)
    assert response.status_code == 200, site.explain(response)
    assert 'id="login-form"' in response.text
    assert 'name="username"' in response.text
    assert 'name="password"' in response.text
    assert 'name="csrfmiddlewaretoken"' in response.text
    assert 'href="/static/admin/css/base.css"' in response.text


def test_admin_css_is_served_by_terns_static_server(site):
    with open(os.path.join(site.static_root, "admin", "css", "base.css"), "rb") as file:
        collected = file.read()
    url = site.url("/static/admin/css/base.css")

    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200, site.explain(response)
    assert response.headers["Content-Type"] == "text/css; charset=utf-8"
    assert response.content == collected
    etag = response.headers.get("ETag")
    assert etag, response.headers

    # Django (DEBUG off, no static view) has no route here and never answers 304: tern's static server does.
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=TIMEOUT)
    assert again.status_code == 304, site.explain(again)
    assert again.content == b""


def test_server_stops_cleanly(site):
    """Runs last (file order): SIGTERM with Django loaded still ends tern with status 0."""
    assert site.server.stop() == 0, "".join(site.server.log_lines)
