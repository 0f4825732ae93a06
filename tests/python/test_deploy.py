"""The deployment in deploy/, end to end: nginx with deploy/nginx/tern.conf (its addresses replaced)
balancing over two tern instances of two workers each, and each instance redeployed in turn under
keep-alive load through nginx: the new code written, the drain announced (SIGUSR2 to the supervisor:
the health path answers 503), SIGHUP (the workers replaced one by one, importing the new code), and
the health path answering 200 again. Instance A is updated in place (``--chdir`` to its code);
instance B runs on a socket passed the way systemd's socket activation passes it
(deploy/systemd/tern.socket) and its code is a release directory switched by a symlink
(``--pythonpath`` through the symlink, as deploy/systemd/tern.service does).

What must hold: no request through nginx fails, every answer to a request sent after both deploys
comes from the new code, and the app sees the client's own address (nginx's X-Forwarded-For, from a
peer tern trusts) and nginx's scheme, whatever the client put in those headers itself.

Skipped without nginx, unless TERN_DEPLOY_TEST_REQUIRED=1 (scripts/test_deploy.sh installs nginx
and sets it). With TERN_DEPLOY_PIDS naming a file, the id of every process started here is appended
to it with this test's directory, so that the script can stop them if pytest itself is killed.
"""

import http.client
import json
import os
from collections import namedtuple
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import Server
from wsgi_support import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITE_CONFIG = os.path.join(REPO, "deploy", "nginx", "tern.conf")

BALANCER_HOST = "127.0.0.1"
INSTANCE_HOSTS = {"a": "127.0.0.2", "b": "127.0.0.3"}
# The test client connects from its own address, so that nginx (which reaches tern from
# 127.0.0.1) and the client are told apart.
CLIENT_HOST = "127.0.0.4"

CLIENTS = 4
LOAD_SECONDS = 20
# Each client stops after this many requests even if the load is not over (a bound, not a goal).
MAX_REQUESTS_PER_CLIENT = 200_000
REQUEST_TIMEOUT = 10
# Consecutive probes, each on a new connection, that must all give the expected answer: enough
# to reach both workers of an instance through their shared accept queue.
PROBES = 10
# How long the announced drain lasts before SIGHUP: a load balancer's time to notice the 503.
ANNOUNCED_FOR = 1.0

REQUIRED = os.environ.get("TERN_DEPLOY_TEST_REQUIRED") == "1"

APP = '''
import json

INSTANCE = {instance!r}
VERSION = {version!r}


def application(environ, start_response):
    echo = environ["wsgi.input"].read().decode() if environ["REQUEST_METHOD"] == "POST" else ""
    body = json.dumps({{
        "instance": INSTANCE,
        "version": VERSION,
        "remote_addr": environ["REMOTE_ADDR"],
        "remote_port": environ["REMOTE_PORT"],
        "scheme": environ["wsgi.url_scheme"],
        "echo": echo,
    }}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
'''

# What systemd does for a socket unit: bind and listen, put the socket at descriptor 3, set
# LISTEN_FDS and LISTEN_PID (the process that will run tern: this one, after exec), exec tern.
ACTIVATE = """
import os, socket, sys
listener = socket.create_server((sys.argv[1], 0), backlog=1024)
fd = listener.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


def unavailable(reason):
    if REQUIRED:
        pytest.fail(f"{reason} (TERN_DEPLOY_TEST_REQUIRED=1)")
    pytest.skip(reason)


def find_nginx():
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which("nginx", path=search)


def free_port(host):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def worker_pids(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(p) for p in children.read().split()]
    except OSError:
        return []


def record_pid(pid, directory):
    """Tells scripts/test_deploy.sh (if it runs this test) about a process to stop if pytest dies."""
    pids_file = os.environ.get("TERN_DEPLOY_PIDS")
    if pids_file:
        with open(pids_file, "a") as pids:
            pids.write(f"{pid} {directory}\n")


def get(address, path, timeout=REQUEST_TIMEOUT):
    """One GET on a new connection; returns (status, body), or (None, error text) if it failed."""
    connection = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    except OSError as error:
        return None, repr(error)
    finally:
        connection.close()


def all_probes(address, path, accept):
    """True if PROBES requests in a row, each on a new connection, give answers ``accept`` likes."""
    return all(accept(*get(address, path)) for _ in range(PROBES))


def is_draining(status, body):
    return status == 503


def is_serving(status, body):
    return status == 200


def version_of(body):
    try:
        return json.loads(body)["version"]
    except (ValueError, KeyError, TypeError):
        return None


def write_atomically(path, text):
    """As a deploy tool would: the new file appears whole, never half written."""
    partial = f"{path}.partial"
    with open(partial, "w") as file:
        file.write(text)
    os.replace(partial, path)


def nginx_config(directory, port, upstreams):
    """deploy/nginx/tern.conf with its listen address and upstream servers replaced, inside an
    ``http`` block whose logs and temporary files stay in ``directory``."""
    with open(SITE_CONFIG) as file:
        site = file.read()
    server_line = re.compile(r"^(\s*)server\s+[^\s;{]+[^;{]*;", re.MULTILINE)
    listen_line = re.compile(r"^(\s*)listen\s+[^;]+;", re.MULTILINE)
    assert len(server_line.findall(site)) >= 1, f"no upstream server line in {SITE_CONFIG}"
    assert len(listen_line.findall(site)) == 1, f"expected one listen line in {SITE_CONFIG}"
    ours = "".join(f"    server {host}:{upstream_port};\n" for host, upstream_port in upstreams)
    first = [True]

    def replace_server(match):
        if first[0]:
            first[0] = False
            return ours.rstrip("\n")
        return ""

    site = server_line.sub(replace_server, site)
    site = listen_line.sub(lambda m: f"{m.group(1)}listen {BALANCER_HOST}:{port};", site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {directory}/nginx-{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
worker_processes 2;
error_log {directory}/nginx-error.log notice;
events {{
    worker_connections 1024;
}}
http {{
    log_format upstreams '$status "$request" upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {directory}/nginx-access.log upstreams;
{temp_paths}
    # Answers are small; none goes to a temporary file (the directory is root's, nginx's workers
    # may run as nobody).
    proxy_max_temp_file_size 0;
{site}
}}
"""


class Nginx:
    """nginx in the foreground with a generated configuration, stopped by its process id."""

    def __init__(self, binary, directory, config):
        self.directory = directory
        self.error_log = os.path.join(directory, "nginx-error.log")
        config_path = os.path.join(directory, "nginx.conf")
        with open(config_path, "w") as file:
            file.write(config)
        argv = [binary, "-p", directory, "-c", config_path, "-e", self.error_log]
        argv += ["-g", f"daemon off; pid {directory}/nginx.pid;"]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        record_pid(self.process.pid, directory)

    def wait_listening(self, address):
        def listening():
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited ({self.process.returncode}):\n{self.process.stderr.read()}\n{self.log()}")
            try:
                socket.create_connection(address, timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(listening, message="nginx listening")

    def log(self):
        try:
            with open(self.error_log) as file:
                return file.read()
        except OSError:
            return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Instance:
    """One tern of the deployment: its code, its process, and how a new release is put in place."""

    def __init__(self, name, directory):
        self.name = name
        self.host = INSTANCE_HOSTS[name]
        self.directory = directory
        self.server = None

    def start(self, argv):
        self.server = Server(argv)
        record_pid(self.server.process.pid, self.directory)
        assert self.server.address[0] == self.host, "".join(self.server.log_lines)
        wait_for(lambda: len(worker_pids(self.supervisor_pid())) == 2, message=f"two workers of {self.name}")

    def supervisor_pid(self):
        return self.server.process.pid

    def stop(self):
        if self.server is not None:
            return self.server.stop()
        return None


class InPlace(Instance):
    """The code is one directory, rewritten by the deploy (``git pull``, ``rsync``)."""

    def launch(self, tern, common):
        os.makedirs(self.directory)
        self.put_release("v1")
        self.pid_file = os.path.join(self.directory, "tern.pid")
        address = ["--host", self.host, "--port", "0"]
        self.start([tern, "serve", "app:application", "--chdir", self.directory, *address, "--pid", self.pid_file, *common])

    def supervisor_pid(self):
        # What an operator's script has: the --pid file.
        with open(self.pid_file) as file:
            pid = int(file.read())
        assert pid == self.server.process.pid
        return pid

    def put_release(self, version):
        write_atomically(os.path.join(self.directory, "app.py"), APP.format(instance=self.name, version=version))


class SwitchedRelease(Instance):
    """Each release in its own directory; ``current`` is a symlink switched atomically. tern is
    started the way deploy/systemd/tern.socket and tern.service start it."""

    def launch(self, tern, common):
        self.current = os.path.join(self.directory, "current")
        self.put_release("v1")
        activate = [sys.executable, "-c", ACTIVATE, self.host]
        self.start([*activate, tern, "serve", "app:application", "--pythonpath", self.current, *common])
        assert "(sockets from systemd)" in "".join(self.server.log_lines)

    def put_release(self, version):
        release = os.path.join(self.directory, "releases", version)
        os.makedirs(release)
        write_atomically(os.path.join(release, "app.py"), APP.format(instance=self.name, version=version))
        switched = f"{self.current}.new"
        os.symlink(release, switched)
        os.replace(switched, self.current)


# One answer through nginx: when its request was sent, and what the app saw and was.
Answer = namedtuple("Answer", "sent instance version remote_addr remote_port scheme")


class Load:
    """Client threads sending GET and POST through nginx on keep-alive connections, from
    CLIENT_HOST, each request carrying forwarding headers of the client's own invention (nginx
    must append to one and replace the other). Every answer is recorded with when its request was
    sent; every failure (connection error, timeout, wrong status or body) is counted."""

    FORGED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}

    def __init__(self, address):
        self.address = address
        self.stop = threading.Event()
        self.answers = [[] for _ in range(CLIENTS)]
        self.failures = []
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def connect(self):
        return http.client.HTTPConnection(*self.address, timeout=REQUEST_TIMEOUT, source_address=(CLIENT_HOST, 0))

    def client(self, index):
        connection = self.connect()
        answers = self.answers[index]
        for n in range(MAX_REQUESTS_PER_CLIENT):
            if self.stop.is_set():
                break
            payload = f"{index}-{n}"
            method = "POST" if n % 2 else "GET"
            sent = time.monotonic()
            try:
                connection.request(method, f"/{payload}", body=payload if method == "POST" else None, headers=self.FORGED)
                answer = connection.getresponse()
                body = answer.read()
            except (OSError, http.client.HTTPException) as error:
                self.failures.append(f"{method}: {error!r}")
                connection.close()
                connection = self.connect()
                continue
            try:
                seen = json.loads(body)
            except ValueError:
                seen = None
            expected_echo = payload if method == "POST" else ""
            if answer.status != 200 or seen is None or seen["echo"] != expected_echo:
                self.failures.append(f"{method}: {answer.status} {body[:200]!r}")
                continue
            answers.append(Answer(sent, *(seen[field] for field in Answer._fields[1:])))
        connection.close()

    def start(self):
        for thread in self.threads:
            thread.start()

    def count(self):
        return sum(len(answers) for answers in self.answers)

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(REQUEST_TIMEOUT + 5)
        return [answer for answers in self.answers for answer in answers]


@pytest.fixture
def deployment(tmp_path):
    """nginx and two tern instances; stops every process it started, whatever happens."""
    nginx_binary = find_nginx()
    if nginx_binary is None:
        unavailable("nginx is not installed")
    for host in (*INSTANCE_HOSTS.values(), CLIENT_HOST):
        try:
            free_port(host)
        except OSError as error:
            unavailable(f"cannot bind {host} on the loopback interface: {error}")
    tern = os.path.join(os.path.dirname(sys.executable), "tern")
    common = ["-w", "2", "--health-path", "/healthz", "--forwarded-allow-ips", "127.0.0.1", "--no-access-log"]
    instances = [InPlace("a", str(tmp_path / "a")), SwitchedRelease("b", str(tmp_path / "b"))]
    nginx = None
    try:
        for instance in instances:
            instance.launch(tern, common)
        port = free_port(BALANCER_HOST)
        upstreams = [instance.server.address for instance in instances]
        nginx = Nginx(nginx_binary, str(tmp_path), nginx_config(str(tmp_path), port, upstreams))
        nginx.wait_listening((BALANCER_HOST, port))
        yield (BALANCER_HOST, port), instances, nginx
    finally:
        if nginx is not None:
            nginx.stop()
        for instance in instances:
            instance.stop()


def redeploy(instance, version):
    """The redeploy sequence of README "Deploying", checked step by step."""
    address = instance.server.address
    instance.put_release(version)
    supervisor = instance.supervisor_pid()
    old_workers = worker_pids(supervisor)
    assert len(old_workers) == 2
    # Announce the drain: the workers' health checks answer 503, the app is still served.
    os.kill(supervisor, signal.SIGUSR2)
    wait_for(
        lambda: all_probes(address, "/healthz", is_draining),
        message=f"the health path of {instance.name} answering 503 after SIGUSR2",
    )
    assert all_probes(address, "/", is_serving), f"{instance.name} stopped serving its app"
    time.sleep(ANNOUNCED_FOR)
    # The rolling restart onto the new code.
    os.kill(supervisor, signal.SIGHUP)
    wait_for(
        lambda: len(worker_pids(supervisor)) == 2 and not set(old_workers) & set(worker_pids(supervisor)),
        message=f"the old workers of {instance.name} replaced",
    )
    health = [get(address, "/healthz") for _ in range(PROBES)]
    assert all(status == 200 for status, _ in health), (
        f"after SIGHUP the new workers of {instance.name} should report healthy: {health}\n" + "".join(instance.server.log_lines)
    )
    assert all_probes(address, "/", lambda status, body: status == 200 and version_of(body) == version), (
        f"{instance.name} does not answer with {version} after SIGHUP\n" + "".join(instance.server.log_lines)
    )


def test_redeploying_each_instance_behind_nginx_fails_no_request(deployment):
    balancer, instances, nginx = deployment
    load = Load(balancer)
    started = time.monotonic()
    load.start()
    try:
        wait_for(lambda: load.count() > 500, message="load flowing through nginx")
        for instance in instances:
            redeploy(instance, "v2")
            total = load.count()
            wait_for(lambda: load.count() > total + 200, message=f"load served after redeploying {instance.name}")
        deployed = time.monotonic()
        wait_for(
            lambda: time.monotonic() - started >= LOAD_SECONDS and time.monotonic() - deployed >= 2,
            timeout=LOAD_SECONDS + 5,
            message="the load's end",
        )
    finally:
        answers = load.finish()
    # $upstream_addr lists every connection a request was tried on.
    with open(os.path.join(nginx.directory, "nginx-access.log")) as access_log:
        retried = sum(1 for line in access_log if ", " in line)
    print(
        f"\ndeploy: {len(answers)} answers through nginx in {time.monotonic() - started:.1f} s, "
        f"{len(load.failures)} failures, {retried} requests retried on another upstream connection by nginx, "
        f"{len({(a.instance, a.remote_port) for a in answers})} connections from nginx to tern"
    )
    assert load.failures == [], f"{len(load.failures)} failed requests, the first: {load.failures[:5]}\n{nginx.log()}"

    before = [a for a in answers if a.sent < started + 0.5]
    after = [a for a in answers if a.sent > deployed]
    assert {a.instance for a in after} == {"a", "b"}, "nginx should still balance over both instances"
    assert {a.version for a in before} == {"v1"}
    stale = [a for a in after if a.version != "v2"]
    assert stale == [], f"{len(stale)} of {len(after)} answers after both deploys came from the old code: {stale[:5]}"
    # The client's own address reached the app through X-Forwarded-For (the address it forged
    # does not), and nginx's scheme replaced the one it forged.
    assert {a.remote_addr for a in answers} == {CLIENT_HOST}
    assert {a.scheme for a in answers} == {"http"}
    # X-Forwarded-For names no port, so REMOTE_PORT is nginx's end of its connection to tern: few
    # ports for many answers means nginx kept its connections to tern alive.
    connections = {(a.instance, a.remote_port) for a in answers}
    assert len(connections) * 20 < len(answers), f"{len(connections)} connections from nginx for {len(answers)} answers"


def test_sigusr2_to_the_supervisor_announces_the_drain(start_server, tmp_path):
    """SIGUSR2 sent to the supervisor (what its --pid file names) reaches every worker: the health
    path answers 503 and the server goes on."""
    write_atomically(str(tmp_path / "app.py"), APP.format(instance="a", version="v1"))
    server = start_server("serve", "app:application", "--chdir", str(tmp_path), "-w", "2", "--health-path", "/healthz")
    wait_for(lambda: len(worker_pids(server.process.pid)) == 2, message="two workers")
    server.process.send_signal(signal.SIGUSR2)
    wait_for(
        lambda: server.process.poll() is not None or all_probes(server.address, "/healthz", is_draining),
        message="the drain announced, or the supervisor gone",
    )
    assert server.process.poll() is None, f"the supervisor exited ({server.process.returncode})"
