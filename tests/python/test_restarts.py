"""Restarts and shutdown with a WSGI app: SIGHUP under keep-alive load fails no request (GET and
POST, through ``requests`` sessions), responses cut at the grace timeout still get ``close()``, and
an app that starts threads at import is warned about before each fork."""

import os
import signal
import socket
import sys
import threading

import requests

from conftest import Server
from wsgi_support import fetch, log_text, wait_for, wait_for_log

RESTARTS = 4
CLIENTS = 16


def worker_pids(server):
    pid = server.process.pid
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(p) for p in children.read().split()]
    except OSError:
        return []


def write_app(directory, name, source):
    path = directory / f"{name}.py"
    path.write_text(source)
    return str(directory)


RESTART_APP = '''
def application(environ, start_response):
    body = environ["wsgi.input"].read() if environ["REQUEST_METHOD"] == "POST" else b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def test_sighup_under_keepalive_load_fails_no_request(start_server, tmp_path):
    """Regression: a draining worker answered with ``Connection: keep-alive`` and then closed
    without reading the request the client had already sent; ``requests`` sessions saw
    ``RemoteDisconnected`` for about one request per connection per restart, POSTs included."""
    pythonpath = write_app(tmp_path, "restart_app", RESTART_APP)
    server = start_server("serve", "restart_app:application", "--pythonpath", pythonpath, "-w", "2", "--no-access-log")
    wait_for(lambda: len(worker_pids(server)) == 2, message="two workers")
    host, port = server.address
    url = f"http://{host}:{port}/"
    stop = threading.Event()
    served = [0] * CLIENTS
    failures = []

    def client(index):
        session = requests.Session()
        n = 0
        while not stop.is_set():
            n += 1
            payload = f"payload {index} {n}".encode()
            try:
                if n % 2:
                    answer = session.post(url, data=payload, timeout=20)
                    ok = answer.status_code == 200 and answer.content == payload
                else:
                    answer = session.get(url, timeout=20)
                    ok = answer.status_code == 200 and answer.content == b"hello"
            except requests.RequestException as error:
                failures.append(repr(error))
                continue
            if ok:
                served[index] += 1
            else:
                failures.append(f"wrong answer {answer.status_code} {answer.content[:50]!r}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(served) > 300, message="load running")
        for _ in range(RESTARTS):
            before = worker_pids(server)
            server.process.send_signal(signal.SIGHUP)
            wait_for(
                lambda: len(worker_pids(server)) == 2 and not set(before) & set(worker_pids(server)),
                message="old workers replaced",
            )
            total = sum(served)
            wait_for(lambda: sum(served) > total + 200, message="load served by the new workers")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == [], f"{len(failures)} failed requests, first: {failures[:3]}"
    assert log_text(server).count("rolling restart done") >= RESTARTS


STREAM_APP = '''
import os

MARKER = os.environ["TERN_TEST_MARKER"]


class Endless:
    """A response that never ends; its close() leaves a mark on disk."""

    def __iter__(self):
        chunk = b"x" * 65536
        while True:
            yield chunk

    def close(self):
        with open(MARKER, "w") as marker:
            marker.write("closed")


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Endless()
'''


def test_grace_timeout_still_closes_cut_responses_and_exits_non_zero(tmp_path):
    """Regression: a response cut at --grace-timeout got no close(), the log said nothing of it,
    and tern exited 0."""
    pythonpath = write_app(tmp_path, "endless_app", STREAM_APP)
    marker = tmp_path / "closed.txt"
    tern = os.path.join(os.path.dirname(sys.executable), "tern")
    env = dict(os.environ, TERN_TEST_MARKER=str(marker))
    argv = [tern, "serve", "endless_app:application", "--pythonpath", pythonpath, "--grace-timeout", "1", "--port", "0"]
    server = Server(argv, env=env)
    try:
        client = socket.create_connection(server.address, timeout=20)
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        # Read a little, then stop reading: the response stays in flight, its iterable parked.
        assert client.recv(1024).startswith(b"HTTP/1.1 200")
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(timeout=20)
        assert status != 0, "a cut request makes the exit status non-zero"
        wait_for_log(server, "cutting 1 request")
        assert marker.read_text() == "closed", "close() of the cut response was called"
        client.close()
    finally:
        server.stop()


THREAD_APP = '''
import threading
import time

threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()


def application(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
'''


def test_an_app_that_starts_threads_at_import_is_warned_about_before_forking(start_server, tmp_path):
    pythonpath = write_app(tmp_path, "threaded_app", THREAD_APP)
    server = start_server("serve", "threaded_app:application", "--pythonpath", pythonpath, "--preload")
    wait_for_log(server, "other thread(s), started while the application was imported")


def test_without_preload_the_supervisor_imports_nothing_and_forks_without_warning(start_server, tmp_path):
    pythonpath = write_app(tmp_path, "threaded_app", THREAD_APP)
    server = start_server("serve", "threaded_app:application", "--pythonpath", pythonpath)
    host, port = server.address
    assert requests.get(f"http://{host}:{port}/", timeout=20).content == b"ok"
    assert "other thread(s)" not in log_text(server)


def test_a_plain_app_gets_no_thread_warning(start_server, tmp_path):
    pythonpath = write_app(tmp_path, "restart_app", RESTART_APP)
    server = start_server("serve", "restart_app:application", "--pythonpath", pythonpath, "--preload")
    host, port = server.address
    assert requests.get(f"http://{host}:{port}/", timeout=20).content == b"hello"
    server.process.send_signal(signal.SIGHUP)
    wait_for_log(server, "rolling restart done")
    assert "other thread(s)" not in "".join(server.log_lines)


# --- SIGHUP loads the code on disk -------------------------------------------------------------------

MINI_SETTINGS = '''
SECRET_KEY = "only-for-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "mini_urls"
INSTALLED_APPS = []
MIDDLEWARE = []
GREETING = "{greeting}"
'''

MINI_URLS = '''
from django.conf import settings
from django.http import HttpResponse
from django.urls import path


def hello(request):
    return HttpResponse(settings.GREETING)


urlpatterns = [path("hello/", hello)]{extra}
'''

MINI_WSGI = '''
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mini_settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
'''


def write_django_project(directory, greeting, extra_url=False):
    (directory / "mini_settings.py").write_text(MINI_SETTINGS.format(greeting=greeting))
    extra = '\nurlpatterns.append(path("new/", lambda request: HttpResponse("a new page")))\n' if extra_url else "\n"
    (directory / "mini_urls.py").write_text(MINI_URLS.format(extra=extra))
    (directory / "mini_wsgi.py").write_text(MINI_WSGI)


def test_sighup_loads_changed_django_code_without_failing_a_request(start_server, tmp_path):
    write_django_project(tmp_path, "first version")
    server = start_server("serve", "mini_wsgi:application", "--chdir", str(tmp_path), "-w", "2", "--no-access-log")
    host, port = server.address
    base = f"http://{host}:{port}"
    assert requests.get(base + "/hello/", timeout=20).text == "first version"
    assert requests.get(base + "/new/", timeout=20).status_code == 404

    stop = threading.Event()
    old_workers_gone = threading.Event()
    failures = []
    answers = []
    # Answers to requests sent once the old workers had exited: a request sent just before may be
    # answered by an old worker and counted a moment after they are gone.
    answers_after_switch = []

    def load():
        session = requests.Session()
        while not stop.is_set():
            sent_after_switch = old_workers_gone.is_set()
            try:
                answer = session.get(base + "/hello/", timeout=20)
                if answer.status_code == 200:
                    answers.append(answer.text)
                    if sent_after_switch:
                        answers_after_switch.append(answer.text)
                else:
                    failures.append(answer.status_code)
            except requests.RequestException as error:
                failures.append(repr(error))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(answers) > 50, message="load running")
        write_django_project(tmp_path, "second version, longer", extra_url=True)
        before = worker_pids(server)
        server.process.send_signal(signal.SIGHUP)
        wait_for_log(server, "rolling restart done")
        wait_for(lambda: not set(before) & set(worker_pids(server)), message="old workers gone")
        old_workers_gone.set()
        wait_for(lambda: len(answers_after_switch) > 50, message="load served by the new code")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == [], failures[:3]
    assert set(answers_after_switch) == {"second version, longer"}, "every answer after the switch is from the new code"
    # Settings and the URL resolver were imported afresh.
    assert requests.get(base + "/new/", timeout=20).text == "a new page"


def test_a_reload_that_fails_to_import_keeps_the_old_workers(start_server, tmp_path):
    pythonpath = write_app(tmp_path, "reloaded_app", RESTART_APP)
    server = start_server("serve", "reloaded_app:application", "--pythonpath", pythonpath, "-w", "2")
    host, port = server.address
    url = f"http://{host}:{port}/"
    assert requests.get(url, timeout=20).content == b"hello"
    before = set(worker_pids(server))
    (tmp_path / "reloaded_app.py").write_text(RESTART_APP + '\nCONFIG = {}["missing_setting"]\n')
    server.process.send_signal(signal.SIGHUP)
    log = wait_for_log(server, "the old workers keep serving")
    assert "KeyError: 'missing_setting'" in log
    assert f'reloaded_app.py", line' in log, "the traceback shows the file and line"
    assert set(worker_pids(server)) == before
    for _ in range(20):
        assert requests.get(url, timeout=20).content == b"hello"
    # Fixed: the next SIGHUP loads it.
    (tmp_path / "reloaded_app.py").write_text(RESTART_APP.replace('b"hello"', 'b"hello again"'))
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: requests.get(url, timeout=20).content == b"hello again", message="the fixed code served")


def test_a_stop_while_workers_still_import_the_app_is_a_clean_stop(serve_app):
    """SIGTERM reaching workers that are still importing the app (before they serve) cuts no
    request: the server stops with status 0, not as if a request had been cut."""
    server = serve_app("slow_import_app:application", "-w", "2")
    wait_for(lambda: len(worker_pids(server)) == 2, message="two workers")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, log_text(server)


def test_a_drain_announced_while_workers_still_import_the_app_reaches_them(serve_app):
    """SIGUSR2 to the supervisor while its workers are still importing the app (they cannot take
    the signal yet): once they serve, their health checks answer 503 all the same."""
    server = serve_app("slow_import_app:application", "-w", "2", "--health-path", "/healthz")
    wait_for(lambda: len(worker_pids(server)) == 2, message="two workers")
    server.process.send_signal(signal.SIGUSR2)

    def health():
        try:
            return fetch(server.address, "GET", "/healthz", timeout=5).status
        except OSError:
            return None

    wait_for(lambda: all(health() == 503 for _ in range(8)), message="every worker's health check at 503")
    assert fetch(server.address, "GET", "/").body == b"loaded\n"
