"""``tern serve APP --reload``: a saved change restarts the workers with no failed request, a broken
module is served as its traceback (500) until a save fixes it, --reload-exclude'd files are ignored,
new subdirectories are watched, static files are never served from before a change, and
--reload --preload is refused."""

import os
import subprocess
import sys
import threading

import requests

from wsgi_support import fetch, log_text, wait_for, wait_for_log

TERN = os.path.join(os.path.dirname(sys.executable), "tern")
CLIENTS = 4
# A restart that does not come is looked for this long after the change that must not cause it.
QUIET_CHECK = 1.5
RESTART_LINE = "code changed: replacing"

APP = '''
def application(environ, start_response):
    body = {text!r}.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def write_app(directory, text, name="reload_app"):
    (directory / f"{name}.py").write_text(APP.format(text=text))


def serve_reloading(start_server, directory, *args):
    server = start_server(
        "serve", "reload_app:application", "--reload", "--chdir", str(directory), "--pythonpath", str(directory), *args
    )
    wait_for_log(server, "reload: watching")
    return server


def body_of(server, path="/"):
    answer = fetch(server.address, "GET", path)
    return answer.status, answer.body


def restarts(server):
    return log_text(server).count(RESTART_LINE)


def test_a_saved_change_is_served_and_no_request_fails_meanwhile(start_server, tmp_path, monkeypatch):
    # Python may cache bytecode here, as it does by default.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    write_app(tmp_path, "version one")
    server = serve_reloading(start_server, tmp_path, "-w", "2", "--no-access-log")
    host, port = server.address
    url = f"http://{host}:{port}/"
    assert body_of(server) == (200, b"version one")
    stop = threading.Event()
    seen = set()
    failures = []

    def client():
        session = requests.Session()
        for _ in range(20000):
            if stop.is_set():
                return
            try:
                answer = session.get(url, timeout=20)
            except requests.RequestException as error:
                failures.append(repr(error))
                continue
            if answer.status_code != 200 or answer.content not in (b"version one", b"version two"):
                failures.append(f"{answer.status_code} {answer.content[:80]!r}")
            seen.add(answer.content)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: b"version one" in seen, message="load running")
        # The same size and modification second as the imported source (a quick second save): the
        # bytecode cached by that import (which records just these two) must not be used.
        source = tmp_path / "reload_app.py"
        before = source.stat()
        write_app(tmp_path, "version two")
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
        wait_for(lambda: b"version two" in seen, message="the new text served")
        wait_for_log(server, "rolling restart done")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == [], f"{len(failures)} failed requests, first: {failures[:3]}"
    assert body_of(server) == (200, b"version two")


def test_an_import_error_is_served_as_its_traceback_until_fixed(start_server, tmp_path):
    docroot = tmp_path / "assets"
    docroot.mkdir()
    (docroot / "style.css").write_text("body{}")
    write_app(tmp_path, "before")
    server = serve_reloading(start_server, tmp_path, "-r", str(docroot))
    assert body_of(server) == (200, b"before")
    (tmp_path / "reload_app.py").write_text("def application(environ, start_response:\n    pass\n")
    wait_for_log(server, "SyntaxError")
    answer = wait_for(lambda: (a := fetch(server.address, "GET", "/any/path")).status == 500 and a, message="500 page")
    assert b"SyntaxError" in answer.body, answer
    assert b"reload_app.py" in answer.body, answer
    assert answer.header("Content-Type").startswith("text/plain"), answer
    # The static mount still answers while the app is broken.
    assert body_of(server, "/static/style.css") == (200, b"body{}")
    write_app(tmp_path, "fixed")
    wait_for(lambda: body_of(server) == (200, b"fixed"), message="the fixed app served")


def test_a_broken_app_at_start_up_is_served_as_its_traceback(start_server, tmp_path):
    (tmp_path / "reload_app.py").write_text("import no_such_module_for_tern_tests\n")
    server = serve_reloading(start_server, tmp_path)
    answer = wait_for(lambda: (a := fetch(server.address, "GET", "/")).status == 500 and a, message="500 page")
    assert b"ModuleNotFoundError" in answer.body, answer
    write_app(tmp_path, "repaired")
    wait_for(lambda: body_of(server) == (200, b"repaired"), message="the repaired app served")


def test_excluded_files_do_not_restart_and_included_ones_do(start_server, tmp_path):
    write_app(tmp_path, "one")
    server = serve_reloading(
        start_server, tmp_path, "--reload-exclude", "scratch_*.py", "--reload-include", "*.html"
    )
    assert body_of(server) == (200, b"one")
    (tmp_path / "scratch_notes.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not watched\n")
    (tmp_path / "reload_app.py.swp").write_text("an editor's swap file\n")
    # A negative check: nothing must happen, so wait a bounded while and look.
    threading.Event().wait(QUIET_CHECK)
    assert restarts(server) == 0, log_text(server)
    (tmp_path / "page.html").write_text("<p>included</p>\n")
    wait_for(lambda: restarts(server) == 1, message="a restart for the included file")
    assert "page.html changed" in log_text(server)


def test_a_new_subdirectory_is_watched(start_server, tmp_path):
    write_app(tmp_path, "one")
    server = serve_reloading(start_server, tmp_path)
    package = tmp_path / "package" / "inner"
    package.mkdir(parents=True)
    threading.Event().wait(0.5)
    (package / "helpers.py").write_text("VALUE = 1\n")
    wait_for_log(server, "helpers.py changed")
    restarted = restarts(server)
    (package / "helpers.py").write_text("VALUE = 2\n")
    wait_for(lambda: restarts(server) > restarted, message="a restart for the edited file")


def test_static_files_are_served_as_saved(start_server, tmp_path):
    """Without --reload a file is served from the cache for up to --file-cache-validity (1 s)."""
    docroot = tmp_path / "assets"
    docroot.mkdir()
    (docroot / "a.txt").write_text("first")
    write_app(tmp_path, "one")
    server = serve_reloading(start_server, tmp_path, "-r", str(docroot))
    assert body_of(server, "/static/a.txt") == (200, b"first")
    (docroot / "a.txt").write_text("again")
    assert body_of(server, "/static/a.txt") == (200, b"again")


def run_failing(*args):
    result = subprocess.run(
        [TERN, "serve", *args, "--port", "0"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    return result.returncode, result.stderr


def test_reload_with_preload_is_refused(tmp_path):
    write_app(tmp_path, "one")
    code, stderr = run_failing("reload_app:application", "--pythonpath", str(tmp_path), "--reload", "--preload")
    assert code == 2
    assert "--reload and --preload" in stderr


def test_reload_options_are_checked(tmp_path):
    write_app(tmp_path, "one")
    code, stderr = run_failing("reload_app:application", "--reload", "--reload-dir", str(tmp_path / "missing"))
    assert code == 2 and "--reload-dir" in stderr and "not a directory" in stderr
    code, stderr = run_failing("reload_app:application", "--reload", "--reload-exclude", "[")
    assert code == 2 and "--reload-exclude" in stderr
    code, stderr = run_failing("reload_app:application", "--reload-dir", str(tmp_path))
    assert code == 2 and "needs --reload" in stderr
