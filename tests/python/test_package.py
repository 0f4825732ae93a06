"""The pip-installed package: the console script and ``python -m tern_server`` run the Rust command line."""

import json
import os
import socket
import subprocess
import sys
import urllib.request

import tern_server
import tern_server._native

TERN = os.path.join(os.path.dirname(sys.executable), "tern")


def test_console_script_reports_the_package_version():
    out = subprocess.run([TERN, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"tern {tern_server.__version__}"


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "tern_server", "--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("An event-driven server")
    for command in ("serve", "echo", "calc", "eval", "hello", "client"):
        assert f"  {command} " in out


def test_python_dash_m_serves_static_files(tmp_path, start_server):
    (tmp_path / "index.html").write_text("<h1>from pip</h1>")
    server = start_server("serve", "-r", str(tmp_path), use_module=True)
    host, port = server.address
    with urllib.request.urlopen(f"http://{host}:{port}/") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.read() == b"<h1>from pip</h1>"
    assert server.stop() == 0


def test_console_script_runs_a_line_service(start_server):
    server = start_server("echo", "--prefix", "GOT:")
    with socket.create_connection(server.address, timeout=10) as connection:
        connection.sendall(b"hello\n")
        assert connection.recv(100) == b"GOT:hello\r\n"


def test_bad_arguments_exit_2_with_one_line(tmp_path):
    result = subprocess.run([TERN, "serve", "-r", str(tmp_path / "missing")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "is not a directory" in result.stderr


WSGI_TYPES_APP = """
import json


def application(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "application/json")])
    # wsgi.file_wrapper is a class; the others are instances of one.
    types = {
        "wsgi.input": type(environ["wsgi.input"]),
        "wsgi.errors": type(environ["wsgi.errors"]),
        "wsgi.file_wrapper": environ["wsgi.file_wrapper"],
        "start_response": type(start_response),
    }
    return [json.dumps({key: value.__module__ for key, value in types.items()}).encode()]
"""


def test_the_native_types_name_the_tern_server_module(tmp_path, start_server):
    # The unrelated "tern" distribution on PyPI installs a "tern" package: the objects tern hands to
    # an app must name this package's module, never "tern".
    (tmp_path / "wsgi_types_app.py").write_text(WSGI_TYPES_APP)
    server = start_server("serve", "wsgi_types_app:application", "--pythonpath", str(tmp_path))
    host, port = server.address
    with urllib.request.urlopen(f"http://{host}:{port}/") as response:
        modules = json.loads(response.read())
    assert modules == dict.fromkeys(["wsgi.input", "wsgi.errors", "wsgi.file_wrapper", "start_response"], "tern_server._native")
    assert tern_server._native.__name__ == "tern_server._native"
