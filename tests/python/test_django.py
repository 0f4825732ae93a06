"""A real Django project (tests/python/django_site) behind the installed ``tern``: the WSGI bridge runs
Django's views, CSRF middleware and admin, while tern's own static server answers under /static/
from the folder ``manage.py collectstatic`` filled.

One server is started for the whole module; the last test stops it and checks the exit code."""

import os

import pytest
import requests

from django_support import TIMEOUT, csrf_token_in, django_environment, manage, start_site


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    env = django_environment(tmp_path_factory.mktemp("django"))
    # No `migrate`: none of the pages below touches the database (anonymous sessions are never saved).
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    site = start_site(env, "django_site.wsgi:application")
    try:
        yield site
    finally:
        site.server.stop()


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
