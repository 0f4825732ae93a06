"""The same Django project (tests/python/django_site) behind the installed ``tern``, this time through
its ASGI entry point (django_site/asgi.py, Django's own ``get_asgi_application()``): ``async def``
views reading the database through the ORM's async API, a response streamed from an async
generator (and closed when the client leaves), request bodies, pipelining while Django listens for
a disconnect, the sync views and the admin (login with a superuser, CSRF, the model list, adding a
row), with the admin's static files from tern's static server.

``tern serve django_site.asgi:application`` needs no ``--interface``: Django's handler has an
``async def __call__``. Django refuses the lifespan scope, which tern then serves without.

One server (one worker, so the streaming test's two requests meet in one event loop) is started
for the whole module on a fresh database: migrated, the notes fixture loaded, a superuser created.
The tests run in file order: the admin adds a note near the end; the last one stops the server."""

import hashlib
import os
import uuid

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from django_support import TIMEOUT, csrf_token_in, django_environment, manage, start_site
from wsgi_support import RawConnection, chunked, fetch, wait_for, wait_for_log

ADMIN_USER = "admin"
ADMIN_PASSWORD = "tern-admin-password-1"
FIXTURE_NOTES = [
    {"slug": "first", "title": "First note"},
    {"slug": "second", "title": "Second note ✓"},
    {"slug": "third", "title": "Third <note>"},
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    env = django_environment(tmp_path_factory.mktemp("django_asgi"))
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(env, "loaddata", "notes", "--verbosity", "0")
    manage(
        env,
        "createsuperuser", "--noinput", "--username", ADMIN_USER, "--email", "admin@example.com",
        extra_env={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
    )
    site = start_site(env, "django_site.asgi:application", "--workers", "1")
    try:
        yield site
    finally:
        site.server.stop()


def log_of(site):
    return "".join(site.server.log_lines)


def signed_in_session(site):
    """A requests session logged in to the admin through its login form."""
    session = requests.Session()
    form = session.get(site.url("/admin/login/?next=/admin/"), timeout=TIMEOUT)
    assert form.status_code == 200, site.explain(form)
    assert session.cookies.get("csrftoken"), form.headers
    answer = session.post(
        site.url("/admin/login/?next=/admin/"),
        data={
            "csrfmiddlewaretoken": csrf_token_in(form.text),
            "username": ADMIN_USER,
            "password": ADMIN_PASSWORD,
            "next": "/admin/",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 302, site.explain(answer)
    assert answer.headers["Location"] == "/admin/"
    assert session.cookies.get("sessionid"), answer.headers
    return session


def test_served_as_asgi_without_lifespan(site):
    """No --interface given: the handler's ``async def __call__`` made tern call it as ASGI, and
    Django's refusal of the lifespan scope is one INFO line, not a failure."""
    log = log_of(site)
    assert "does not support the lifespan protocol" in log, log
    assert "Django can only handle ASGI/HTTP connections, not lifespan." in log, log
    response = requests.get(site.url("/notes/"), timeout=TIMEOUT)
    assert response.status_code == 200, site.explain(response)


def test_async_view_reads_the_notes_through_the_async_orm(site):
    response = requests.get(site.url("/notes/"), params={"slug": "second"}, timeout=TIMEOUT)
    assert response.status_code == 200, site.explain(response)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"notes": FIXTURE_NOTES, "count": 3, "found": "Second note ✓", "user": None}


def test_async_view_raising_http404_is_djangos_404(site):
    response = requests.get(site.url("/notes/"), params={"slug": "none-such"}, timeout=TIMEOUT)
    assert response.status_code == 404, site.explain(response)
    assert "Not Found" in response.text


def test_async_view_renders_a_template(site):
    response = requests.get(site.url("/notes/page/"), timeout=TIMEOUT)
    assert response.status_code == 200, site.explain(response)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<li data-slug="first">First note</li>' in response.text
    assert '<li data-slug="second">Second note ✓</li>' in response.text
    assert '<li data-slug="third">Third &lt;note&gt;</li>' in response.text
    head = requests.head(site.url("/notes/page/"), timeout=TIMEOUT)
    assert head.status_code == 200, site.explain(head)
    assert head.headers["Content-Length"] == str(len(response.content))
    assert head.content == b""


def open_stream_until_waiting(site, token):
    """A connection whose GET /stream/TOKEN/ has sent every line up to ``waiting``; its head; the lines."""
    conn = RawConnection(site.address)
    conn.request("GET", f"/stream/{token}/")
    head = conn.read_head()
    assert head.status == 200, head
    received = b""
    while not received.endswith(b"waiting\n"):
        chunk = conn.read_chunk()
        assert chunk, f"the body ended before the release: {received!r}"
        received += chunk
    return conn, head, received


def stream_is_waiting(site, token):
    """Whether the stream's generator still waits (its ``finally`` forgets the token)."""
    answer = fetch(site.address, "GET", "/streams/")
    assert answer.status == 200, answer
    return token in answer.json()["waiting"]


def test_streaming_response_from_an_async_generator_arrives_part_by_part(site):
    """The first lines come while the generator still waits (for a second request that the test
    sends only after reading them), then the rest and the end of the chunked body."""
    token = uuid.uuid4().hex
    conn, head, before = open_stream_until_waiting(site, token)
    with conn:
        assert head.header("Content-Type") == "text/plain; charset=utf-8"
        assert "chunked" in (head.header("Transfer-Encoding") or "").lower(), head
        assert stream_is_waiting(site, token)
        assert before.decode() == "1: First note\n2: Second note ✓\n3: Third <note>\nwaiting\n"

        released = fetch(site.address, "GET", f"/stream/{token}/release/")
        assert released.status == 200, released
        assert released.json() == {"released": token}

        after = b""
        while True:
            chunk = conn.read_chunk()
            if not chunk:
                break
            after += chunk
        assert after == b"end\n"
        # The connection is kept and serves the next request.
        again = conn.roundtrip("GET", "/notes/")
        assert again.status == 200 and again.json()["count"] == 3, again


def test_request_bodies_reach_django_whole(site):
    """Bodies in one piece and in many (1 MiB with Content-Length, chunked), on one connection."""
    large = os.urandom(1 << 20)
    pieces = [os.urandom(size) for size in (1, 70_000, 5, 200_000)]
    with RawConnection(site.address) as conn:
        for body, headers, wire in [
            (b"", [("Content-Length", "0")], b""),
            (b"small body", [("Content-Length", "10")], b"small body"),
            (large, [("Content-Length", str(len(large)))], large),
            (b"".join(pieces), [("Transfer-Encoding", "chunked")], chunked(*pieces)),
        ]:
            answer = conn.roundtrip("POST", "/digest/", headers=[("Content-Type", "application/octet-stream"), *headers], body=wire)
            assert answer.status == 200, answer
            assert answer.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert "Invalid ASGI message" not in log_of(site), log_of(site)


def test_expect_continue_is_answered_when_django_reads_the_body(site):
    with RawConnection(site.address) as conn:
        conn.request("POST", "/digest/", headers=[("Content-Length", "5"), ("Expect", "100-continue")])
        interim = conn.read_head()
        assert interim.status == 100, interim
        conn.send(b"hello")
        answer = conn.read_response()
    assert answer.status == 200, answer
    assert answer.json() == {"length": 5, "sha256": hashlib.sha256(b"hello").hexdigest()}


def test_pipelined_requests_are_not_taken_for_a_disconnect(site):
    """Django listens for ``http.disconnect`` while a view runs: the next requests, already sent
    on the same connection, must wait for their turn and not end the first one."""
    host = f"Host: {site.address[0]}:{site.address[1]}\r\n"
    with RawConnection(site.address) as conn:
        conn.send(
            (
                f"GET /notes/ HTTP/1.1\r\n{host}\r\n"
                f"POST /digest/ HTTP/1.1\r\n{host}Content-Length: 3\r\n\r\nabc"
                f"GET /notes/?slug=third HTTP/1.1\r\n{host}\r\n"
            ).encode()
        )
        answers = [conn.read_response() for _ in range(3)]
    assert [answer.status for answer in answers] == [200, 200, 200], answers
    assert answers[0].json()["count"] == 3
    assert answers[1].json() == {"length": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    assert answers[2].json()["found"] == "Third <note>"


def test_client_leaving_a_stream_cancels_the_async_generator(site):
    """tern tells Django the client closed (``http.disconnect``); Django cancels the response,
    which closes the generator while it waits."""
    token = uuid.uuid4().hex
    conn, _, _ = open_stream_until_waiting(site, token)
    assert stream_is_waiting(site, token)
    conn.close()
    wait_for(lambda: not stream_is_waiting(site, token), message="the stream's generator to end")
    after = requests.get(site.url("/notes/"), timeout=TIMEOUT)
    assert after.status_code == 200, site.explain(after)


def test_request_left_by_its_client_is_in_the_access_log(site):
    token = uuid.uuid4().hex
    conn, _, _ = open_stream_until_waiting(site, token)
    conn.close()
    wait_for(lambda: not stream_is_waiting(site, token), message="the stream's generator to end")
    # A request made after the stream's ended: once its line is out (access lines are written at
    # least once a second, in order), the stream's would be out too.
    assert fetch(site.address, "GET", f"/notes/?after={token}").status == 200
    wait_for_log(site.server, f'"GET /notes/?after={token} HTTP/1.1" 200')
    wait_for(lambda: f'"GET /stream/{token}/ HTTP/1.1" 200' in log_of(site), timeout=3, message="the stream's access line")


def test_sync_views_still_work_under_asgi(site):
    home = requests.get(site.url("/"), timeout=TIMEOUT)
    assert home.status_code == 200, site.explain(home)
    assert "<h1>Hello from Django on tern</h1>" in home.text
    assert "rendered by a Django template for GET /." in home.text

    missing = requests.get(site.url("/no-such-page/"), timeout=TIMEOUT)
    assert missing.status_code == 404, site.explain(missing)

    with requests.Session() as session:
        form = session.get(site.url("/echo/"), timeout=TIMEOUT)
        assert form.status_code == 200, site.explain(form)
        answer = session.post(
            site.url("/echo/"),
            data={"csrfmiddlewaretoken": csrf_token_in(form.text), "message": "tern & django ✓"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, site.explain(answer)
        assert '<output id="echoed">tern &amp; django ✓</output>' in answer.text
        # The cookie goes along, the form field does not.
        refused = session.post(site.url("/echo/"), data={"message": "no token"}, timeout=TIMEOUT)
    assert refused.status_code == 403, site.explain(refused)
    assert "CSRF verification failed" in refused.text


def test_admin_login_page_and_its_static_files(site):
    response = requests.get(site.url("/admin/login/"), timeout=TIMEOUT)
    assert response.status_code == 200, site.explain(response)
    assert 'id="login-form"' in response.text
    assert 'name="username"' in response.text and 'name="password"' in response.text
    assert 'name="csrfmiddlewaretoken"' in response.text
    assert 'href="/static/admin/css/base.css"' in response.text

    with open(os.path.join(site.static_root, "admin", "css", "base.css"), "rb") as file:
        collected = file.read()
    css = requests.get(site.url("/static/admin/css/base.css"), timeout=TIMEOUT)
    assert css.status_code == 200, site.explain(css)
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert css.content == collected


def test_admin_login_with_a_wrong_password_is_refused(site):
    with requests.Session() as session:
        form = session.get(site.url("/admin/login/"), timeout=TIMEOUT)
        answer = session.post(
            site.url("/admin/login/"),
            data={"csrfmiddlewaretoken": csrf_token_in(form.text), "username": ADMIN_USER, "password": "wrong"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
    assert answer.status_code == 200, site.explain(answer)
    assert "Please enter the correct username and password" in answer.text
    assert "sessionid" not in answer.cookies


def test_admin_login_then_index_lists_the_models(site):
    with signed_in_session(site) as session:
        index = session.get(site.url("/admin/"), timeout=TIMEOUT)
        assert index.status_code == 200, site.explain(index)
        assert "Site administration" in index.text
        assert 'href="/admin/pages/note/"' in index.text
        assert 'href="/admin/auth/user/"' in index.text

        changelist = session.get(site.url("/admin/pages/note/"), timeout=TIMEOUT)
        assert changelist.status_code == 200, site.explain(changelist)
        for note in FIXTURE_NOTES:
            assert f">{note['slug']}<" in changelist.text, changelist.text
        assert "3 notes" in changelist.text

        # The async view sees the session's user.
        assert session.get(site.url("/notes/"), timeout=TIMEOUT).json()["user"] == ADMIN_USER


def test_note_added_in_the_admin_is_read_by_the_async_view(site):
    with signed_in_session(site) as session:
        form = session.get(site.url("/admin/pages/note/add/"), timeout=TIMEOUT)
        assert form.status_code == 200, site.explain(form)
        added = session.post(
            site.url("/admin/pages/note/add/"),
            data={
                "csrfmiddlewaretoken": csrf_token_in(form.text),
                "slug": "added",
                "title": "Added in the admin",
                "position": "9",
                "_save": "Save",
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert added.status_code == 302, site.explain(added)
        assert added.headers["Location"] == "/admin/pages/note/"
        listed = session.get(site.url("/admin/pages/note/"), timeout=TIMEOUT)
        assert "4 notes" in listed.text, site.explain(listed)

    answer = requests.get(site.url("/notes/"), params={"slug": "added"}, timeout=TIMEOUT)
    assert answer.status_code == 200, site.explain(answer)
    assert answer.json()["notes"][-1] == {"slug": "added", "title": "Added in the admin"}
    assert answer.json()["found"] == "Added in the admin"


def test_websocket_handshake_to_django_is_a_500_and_the_site_goes_on(site):
    """Django's handler raises for a ``websocket`` scope before answering: tern refuses the
    handshake with a 500 and logs the traceback."""
    url = f"ws://{site.address[0]}:{site.address[1]}/notes/"
    with pytest.raises(InvalidStatus) as info:
        with connect(url, proxy=None, ping_interval=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT):
            pass
    assert info.value.response.status_code == 500
    wait_for_log(site.server, "Django can only handle ASGI/HTTP connections, not websocket.")
    after = requests.get(site.url("/notes/"), timeout=TIMEOUT)
    assert after.status_code == 200, site.explain(after)


def test_websocket_handshake_refused_with_500_is_access_logged_with_its_request(site):
    refusal = "Django can only handle ASGI/HTTP connections, not websocket."
    refused_before = log_of(site).count(refusal)
    url = f"ws://{site.address[0]}:{site.address[1]}/ws-to-django/"
    with pytest.raises(InvalidStatus) as info:
        with connect(url, proxy=None, ping_interval=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT):
            pass
    assert info.value.response.status_code == 500
    # Each refused handshake logs its traceback and one access line with its 500.
    wait_for(lambda: log_of(site).count(refusal) > refused_before, message=f"the traceback:\n{log_of(site)}")

    def access_lines_of_500s():
        lines = [line for line in site.server.log_lines if '" 500 ' in line]
        return lines if len(lines) > refused_before else None

    lines = wait_for(access_lines_of_500s, message=f"the access line of the refused handshake:\n{log_of(site)}")
    assert any('"GET /ws-to-django/ HTTP/1.1" 500 ' in line for line in lines), lines


def test_server_stops_cleanly(site):
    """Runs last (file order): SIGTERM with Django's ASGI handler loaded ends tern with status 0."""
    assert site.server.stop() == 0, log_of(site)
