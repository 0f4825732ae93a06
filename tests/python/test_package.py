"""The pip-installed package: the console script and ``python -m tern`` run the Rust command line."""

import os
import socket
import subprocess
import sys
import urllib.request

import tern

TERN = os.path.join(os.path.dirname(sys.executable), "tern")


def test_console_script_reports_the_package_version():
    out = subprocess.run([TERN, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"tern {tern.__version__}"


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "tern", "--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("An event-driven server")
    for command in ("serve", "echo", "calc", "eval", "hello", "client"):
        assert f"  {command} " in out


def test_python_dash_m_serves_static_files(tmp_path, start_server):
    (tmp_path / "index.html").write_text("<h1>from pip</h1>")
    server = start_server("serve", "-r", str(tmp_path), use_module=True)
    host, port = server.address
    with urllib.request.urlopen(f"http://{host}:{port}/") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html"
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
