"""The command lines of tern and of its peers, each with one worker, in one place: tern always with
its defaults, each peer with the settings its documentation recommends for the workload, and the
words the report uses to say which settings those are."""

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
VENV_BIN = BENCH_DIR / ".venv" / "bin"

# What each WSGI peer runs with, as the report states it.
SETTINGS = {
    "bjoern": "defaults",
    "granian": "defaults (its docs: leave the blocking threads alone, backpressure default 1024)",
    "gunicorn sync": "defaults (sync worker)",
    "gunicorn gthread 4": "gthread, 4 threads (its docs: threads 2-4 x cores)",
    "gunicorn gthread 64": "gthread, 64 threads",
    "uwsgi": "1 process, no threads (uWSGI's default)",
    "uwsgi 64 threads": "1 process, 64 threads",
    "waitress 64 threads": "64 threads, connection limit 1000 (its default of 100 would turn connections away)",
    "nginx": "1 worker, sendfile, open_file_cache, keep-alive without limit",
    "granian asgi": "--interface asgi, defaults (uvloop when installed, WebSockets on)",
    "uvicorn": "--loop uvloop --http httptools --ws websockets, access log off (its fastest setup)",
    "hypercorn": "-k uvloop, defaults",
}

ASGI_PEERS = ("granian asgi", "uvicorn", "hypercorn")


def asgi_peer(name, target, port):
    """The command line of ASGI peer `name` serving `target` ("module:callable", imported from the
    working directory) on 127.0.0.1:`port`, with one worker."""
    host = "127.0.0.1"
    commands = {
        "granian asgi": [str(VENV_BIN / "granian"), "--interface", "asgi", "--workers", "1", "--host", host,
                         "--port", str(port), "--log-level", "warning", target],
        "uvicorn": [str(VENV_BIN / "uvicorn"), target, "--host", host, "--port", str(port), "--workers", "1",
                    "--loop", "uvloop", "--http", "httptools", "--ws", "websockets", "--no-access-log",
                    "--log-level", "warning"],
        "hypercorn": [str(VENV_BIN / "hypercorn"), "--workers", "1", "--bind", f"{host}:{port}", "-k", "uvloop",
                      target],
    }
    return commands[name]


def wsgi_peer(name, target, port):
    """The command line of WSGI peer `name` serving `target` ("module:callable", imported from the
    working directory the server is started in) on 127.0.0.1:`port`."""
    module, callable_name = target.split(":")
    python = str(VENV_BIN / "python")
    host = "127.0.0.1"
    gunicorn = [str(VENV_BIN / "gunicorn"), "-w", "1", "-b", f"{host}:{port}"]
    uwsgi = [str(VENV_BIN / "uwsgi"), "--http11-socket", f"{host}:{port}", "--module", target, "--processes", "1",
             "--disable-logging"]
    commands = {
        "bjoern": [python, "-c", f"import bjoern, {module}; bjoern.run({module}.{callable_name}, '{host}', {port})"],
        "granian": [str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", "1", "--host", host,
                    "--port", str(port), "--no-ws", "--log-level", "warning", target],
        "gunicorn sync": [*gunicorn, target],
        "gunicorn gthread 4": [*gunicorn, "-k", "gthread", "--threads", "4", target],
        "gunicorn gthread 64": [*gunicorn, "-k", "gthread", "--threads", "64", target],
        "uwsgi": uwsgi,
        "uwsgi 64 threads": [*uwsgi, "--threads", "64"],
        "waitress 64 threads": [str(VENV_BIN / "waitress-serve"), f"--listen={host}:{port}", "--threads=64",
                                "--connection-limit=1000", target],
    }
    return commands[name]


def tern_wsgi(tern, target, port):
    """tern serving a WSGI app with its default settings (`tern` is the pip-installed command)."""
    return [str(tern), "serve", target, "--port", str(port)]


def tern_static(tern, site, port):
    """tern serving a directory with its default settings."""
    return [str(tern), "serve", "-r", str(site), "--port", str(port)]


def nginx_version():
    """nginx's version as a tuple of numbers, e.g. (1, 22, 1), from `nginx -v`."""
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=True).stderr
    return tuple(int(n) for n in re.search(r"nginx/([\d.]+)", out).group(1).split("."))


def nginx_config(directory, site, port, tls=None, http2=False):
    """nginx with one worker, as a static-file deployment configures it; with `tls` (certificate
    and key PEM paths), over TLS 1.2 and 1.3 with a shared session cache; with `http2` too, ALPN
    offers h2 (nginx 1.25.1 took `http2 on;` in place of `listen ... http2`, which Debian bookworm's
    1.22 still needs). Returns its command line."""
    name = ("nginx-h2" if http2 else "nginx-tls") if tls else "nginx"
    conf = Path(directory) / f"{name}.conf"
    if tls:
        cert, key = tls
        ssl = ("    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_session_cache shared:SSL:10m;\n")
        listen, h2 = f"listen 127.0.0.1:{port} ssl", ""
        if http2:
            listen, h2 = (listen, " http2 on;") if nginx_version() >= (1, 25, 1) else (f"{listen} http2", "")
        server = f"{listen};{h2} ssl_certificate {cert}; ssl_certificate_key {key}; root {site};"
    else:
        ssl = ""
        server = f"listen 127.0.0.1:{port}; root {site};"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {directory}/{name}.pid;
error_log {directory}/{name}-error.log;
worker_rlimit_nofile 30000;
events {{ worker_connections 20000; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    open_file_cache max=1000 inactive=20s;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_body_temp_path {directory}/body;
{ssl}    server {{ {server} }}
}}
""")
    return ["nginx", "-c", str(conf), "-p", str(directory)]


def installed(name):
    """Whether peer `name` can be started here (bench/run.sh installs them all)."""
    if name == "nginx":
        return shutil.which("nginx") is not None
    argv = asgi_peer(name, "asgi_apps:hello", 0) if name in ASGI_PEERS else wsgi_peer(name, "apps:hello", 0)
    if not Path(argv[0]).exists():
        return False
    if name == "bjoern":
        return subprocess.run([argv[0], "-c", "import bjoern"], capture_output=True).returncode == 0
    return True
