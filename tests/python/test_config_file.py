"""Options from ``[tool.tern]`` in the working directory's pyproject.toml, read by the pip-installed
``tern`` command (and ``python -m tern_server``): the same Rust command line as the pure-Rust binary,
so the APP, its mounts and its limits can all live in the project's pyproject.toml."""

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import Server
from wsgi_support import fetch

TERN = os.path.join(os.path.dirname(sys.executable), "tern")

APP = '''
def application(environ, start_response):
    body = ("configured app at " + environ["SCRIPT_NAME"] + environ["PATH_INFO"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''

PYPROJECT = """
[project]
name = "configured-site"
version = "1.0"

[tool.tern]
app = "configured_app:application"
docroot = "public"
static_url = "/assets/"
root-path = "/mounted"
max-body-size = "1K"
threads = 4
"""


def project(directory):
    (directory / "configured_app.py").write_text(textwrap.dedent(APP))
    (directory / "public").mkdir()
    (directory / "public" / "style.css").write_text("body{}")
    (directory / "pyproject.toml").write_text(PYPROJECT)


@pytest.mark.parametrize("use_module", [False, True], ids=["tern", "python -m tern_server"])
def test_tool_tern_in_pyproject_configures_the_app_and_its_mounts(tmp_path, use_module):
    project(tmp_path)
    launcher = [sys.executable, "-m", "tern_server"] if use_module else [TERN]
    server = Server([*launcher, "serve", "--port", "0"], cwd=tmp_path)
    try:
        answer = fetch(server.address, "GET", "/mounted/hello")
        assert (answer.status, answer.body) == (200, b"configured app at /mounted/hello")
        assert fetch(server.address, "GET", "/assets/style.css").body == b"body{}"
        assert fetch(server.address, "POST", "/mounted/upload", body=b"x" * 2000).status == 413
        log = "".join(server.log_lines)
        assert f"config: read {tmp_path.resolve() / 'pyproject.toml'} [tool.tern]" in log, log
    finally:
        assert server.stop() == 0


def test_an_unknown_key_in_tool_tern_stops_the_start_with_status_2(tmp_path):
    project(tmp_path)
    with open(tmp_path / "pyproject.toml", "a") as pyproject:
        pyproject.write('thread = 8\n')
    result = subprocess.run(
        [TERN, "serve", "--port", "0"], capture_output=True, text=True, timeout=30, cwd=tmp_path, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 2, result.stderr
    assert "pyproject.toml [tool.tern]: unknown key 'thread'" in result.stderr
