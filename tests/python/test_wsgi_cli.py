"""``tern serve APP``'s command line: loading the app (and failing to), --chdir, --pythonpath, static
mounts beside the app, --root-path, the access log, and ``python -m tern_server``."""

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from wsgi_support import APPS_DIR, RawConnection, fetch, log_text, wait_for_log

TERN = os.path.join(os.path.dirname(sys.executable), "tern")


def run_failing(*args, cwd=None):
    """Runs ``tern serve ...`` that is expected to exit at start-up; bounded by a timeout."""
    result = subprocess.run(
        [TERN, "serve", *args, "--port", "0"], capture_output=True, text=True, timeout=30, cwd=cwd, stdin=subprocess.DEVNULL
    )
    return result.returncode, result.stderr


def summary_line(stderr):
    """The first line of a start-up failure: what failed and why, in one line."""
    lines = stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[0].startswith("tern: "), stderr
    assert "Traceback" not in lines[0]
    return lines[0]


def assert_traceback_points_at(stderr, path, line):
    """The full traceback follows the summary, down to the file and line that failed."""
    assert "Traceback (most recent call last):" in stderr, stderr
    assert f'File "{path}", line {line}' in stderr, stderr


def write_module(directory, name, source):
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


def paths_seen(server):
    answer = fetch(server.address, "GET", "/records?token=all-paths")
    assert answer.status == 200
    return answer.json()


# --- loading the app ---------------------------------------------------------------------------------


def test_missing_module_exits_2_with_a_summary(tmp_path):
    code, stderr = run_failing("no_such_module_for_tern_tests:application", "--pythonpath", str(tmp_path))
    assert code == 2
    assert "no_such_module_for_tern_tests" in summary_line(stderr)


def test_missing_attribute_exits_2_with_a_summary():
    code, stderr = run_failing("pep_app:no_such_attribute", "--pythonpath", APPS_DIR)
    assert code == 2
    line = summary_line(stderr)
    assert "pep_app" in line
    assert "no_such_attribute" in line


def test_factory_that_raises_exits_2_with_a_summary(tmp_path):
    write_module(
        tmp_path,
        "factory_fails",
        """
        def create_app():
            raise RuntimeError("the factory failed on purpose")
        """,
    )
    code, stderr = run_failing("factory_fails:create_app()", "--pythonpath", str(tmp_path))
    assert code == 2
    line = summary_line(stderr)
    assert "factory_fails" in line
    assert "the factory failed on purpose" in line
    assert_traceback_points_at(stderr, tmp_path / "factory_fails.py", 3)


def test_syntax_error_in_the_module_exits_2_with_a_summary(tmp_path):
    write_module(tmp_path, "broken_syntax", "def application(environ, start_response:\n    return []\n")
    code, stderr = run_failing("broken_syntax:application", "--pythonpath", str(tmp_path))
    assert code == 2
    line = summary_line(stderr)
    assert "broken_syntax" in line
    assert "syntax" in line.lower() or "never closed" in line


def test_module_raising_at_import_exits_2_with_a_summary(tmp_path):
    write_module(
        tmp_path,
        "raises_at_import",
        """
        import json
        raise LookupError("configuration is missing, line one\\nline two")
        """,
    )
    code, stderr = run_failing("raises_at_import", "--pythonpath", str(tmp_path))
    assert code == 2
    line = summary_line(stderr)
    assert "raises_at_import" in line
    assert "configuration is missing" in line
    assert_traceback_points_at(stderr, tmp_path / "raises_at_import.py", 3)


def test_an_error_deep_inside_the_import_shows_its_file_and_line(tmp_path):
    """Regression: a KeyError raised in a module the app imports showed no file or line."""
    write_module(tmp_path, "deep_settings", 'import os\nSECRET = {"a": 1}["missing_key"]\n')
    write_module(tmp_path, "deep_app", "import deep_settings\n\ndef application(environ, start_response):\n    return []\n")
    code, stderr = run_failing("deep_app", "--pythonpath", str(tmp_path))
    assert code == 2
    assert "KeyError" in summary_line(stderr)
    assert_traceback_points_at(stderr, tmp_path / "deep_settings.py", 2)


def test_default_attribute_is_application(serve_app):
    server = serve_app("pep_app")
    assert fetch(server.address, "GET", "/hello").body == b"hello world"


def test_factory_is_called(serve_app):
    server = serve_app("pep_app:create_app()")
    answer = fetch(server.address, "GET", "/hello")
    assert (answer.status, answer.body) == (200, b"hello world")


def test_factory_of_a_framework_app(serve_app):
    server = serve_app("falcon_app:create_app()")
    answer = fetch(server.address, "GET", "/quote")
    assert answer.status == 200
    assert answer.json()["count"] == 1


def test_chdir_makes_the_directory_importable(start_server, tmp_path):
    server = start_server("serve", "pep_app:application", "--chdir", APPS_DIR)
    assert fetch(server.address, "GET", "/hello").body == b"hello world"


def test_chdir_changes_the_working_directory(start_server, tmp_path):
    write_module(
        tmp_path,
        "cwd_app",
        """
        import os

        def application(environ, start_response):
            body = os.getcwd().encode()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        """,
    )
    server = start_server("serve", "cwd_app:application", "--chdir", str(tmp_path))
    assert fetch(server.address, "GET", "/").body.decode() == os.path.realpath(tmp_path)


def test_pythonpath_is_repeatable(start_server, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    write_module(tmp_path / "one", "greeting", 'TEXT = b"hello from a second --pythonpath"\n')
    write_module(
        tmp_path / "two",
        "uses_greeting",
        """
        from greeting import TEXT

        def application(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(TEXT)))])
            return [TEXT]
        """,
    )
    server = start_server(
        "serve", "uses_greeting:application", "--pythonpath", str(tmp_path / "two"), "--pythonpath", str(tmp_path / "one")
    )
    assert fetch(server.address, "GET", "/").body == b"hello from a second --pythonpath"


def test_python_dash_m_tern_serves_an_app(serve_app):
    server = serve_app("pep_app:application", use_module=True)
    answer = fetch(server.address, "GET", "/hello")
    assert (answer.status, answer.body) == (200, b"hello world")
    assert server.stop() == 0


# --- static files beside the app ---------------------------------------------------------------------


@pytest.fixture
def docroot(tmp_path):
    root = tmp_path / "public"
    (root / "css").mkdir(parents=True)
    (root / "css" / "style.css").write_text("body { color: teal; }\n")
    (root / "index.html").write_text("<h1>static index</h1>")
    return root


def test_docroot_is_served_under_static_and_never_reaches_the_app(serve_app, docroot):
    server = serve_app("pep_app:application", "-r", str(docroot))
    with RawConnection(server.address) as connection:
        css = connection.roundtrip("GET", "/static/css/style.css")
        assert css.status == 200
        assert css.header("Content-Type") == "text/css; charset=utf-8"
        assert css.body == b"body { color: teal; }\n"
        etag = css.header("ETag")
        assert etag

        cached = connection.roundtrip("GET", "/static/css/style.css", [("If-None-Match", etag)])
        assert cached.status == 304
        assert cached.body == b""

        part = connection.roundtrip("GET", "/static/css/style.css", [("Range", "bytes=0-3")])
        assert part.status == 206
        assert part.body == b"body"
        assert part.header("Content-Range") == "bytes 0-3/22"

        missing = connection.roundtrip("GET", "/static/css/missing.css")
        assert missing.status == 404
        assert b"no route for" not in missing.body

        # Everything outside /static/ is the app's, including / (which the app does not route).
        root = connection.roundtrip("GET", "/")
        assert (root.status, root.body) == (404, b"no route for '/'")
        assert connection.roundtrip("GET", "/hello").body == b"hello world"

    seen = paths_seen(server)
    assert not [path for path in seen if path.startswith("/static")], seen
    assert "/hello" in seen and "/" in seen


def test_static_url_moves_the_docroot_mount(serve_app, docroot):
    server = serve_app("pep_app:application", "-r", str(docroot), "--static-url", "/assets/")
    assert fetch(server.address, "GET", "/assets/css/style.css").body == b"body { color: teal; }\n"
    answer = fetch(server.address, "GET", "/static/css/style.css")
    assert (answer.status, answer.body) == (404, b"no route for '/static/css/style.css'")


def test_static_mounts_are_repeatable(serve_app, docroot, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "photo.txt").write_text("not really a photo")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "data.json").write_text('{"ok": true}')
    server = serve_app(
        "pep_app:application",
        "-r",
        str(docroot),
        "--static",
        f"/media/={media}",
        "--static",
        f"/downloads={downloads}",
    )
    answer = fetch(server.address, "GET", "/media/photo.txt")
    assert (answer.status, answer.body) == (200, b"not really a photo")
    assert answer.header("Content-Type") == "text/plain; charset=utf-8"
    answer = fetch(server.address, "GET", "/downloads/data.json")
    assert (answer.status, answer.body) == (200, b'{"ok": true}')
    assert answer.header("Content-Type") == "application/json"
    assert fetch(server.address, "GET", "/static/css/style.css").body == b"body { color: teal; }\n"
    assert fetch(server.address, "GET", "/hello").body == b"hello world"

    seen = paths_seen(server)
    assert not [path for path in seen if path.startswith(("/media", "/downloads", "/static"))], seen


def test_static_paths_cannot_leave_the_mount(serve_app, docroot, tmp_path):
    (tmp_path / "secret.txt").write_text("outside the docroot")
    server = serve_app("pep_app:application", "-r", str(docroot))
    with RawConnection(server.address) as connection:
        answer = connection.roundtrip("GET", "/static/../secret.txt")
        assert answer.status in (400, 403, 404)
        assert b"outside the docroot" not in answer.body
        answer = connection.roundtrip("GET", "/static/%2e%2e/secret.txt")
        assert answer.status in (400, 403, 404)
        assert b"outside the docroot" not in answer.body


# --- --root-path, logs --------------------------------------------------------------------------------


def test_root_path_becomes_script_name(serve_app):
    server = serve_app("pep_app:application", "--root-path", "/prefix")
    answer = fetch(server.address, "GET", "/prefix/environ?x=1")
    assert answer.status == 200
    env = answer.json()
    assert env["SCRIPT_NAME"] == "/prefix"
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "x=1"

    env = fetch(server.address, "GET", "/prefix/environ/caf%C3%A9").json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/prefix", "/environ/caf\xc3\xa9")


def test_root_path_under_the_validator(serve_app):
    server = serve_app("validated_pep:application", "--root-path", "/prefix")
    env = fetch(server.address, "GET", "/prefix/environ").json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/prefix", "/environ")


def test_access_log_line_and_no_access_log(serve_app):
    token = uuid.uuid4().hex[:12]
    server = serve_app("pep_app:application")
    assert fetch(server.address, "GET", f"/logged-{token}").status == 404
    wait_for_log(server, f'"GET /logged-{token} HTTP/1.1" 404')

    quiet = serve_app("pep_app:application", "--no-access-log")
    assert fetch(quiet.address, "GET", f"/quiet-{token}").status == 404
    assert quiet.stop() == 0
    quiet.log_reader.join(10)
    assert f"quiet-{token}" not in log_text(quiet)
