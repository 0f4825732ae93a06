"""HTTPS end to end against the installed tern: certificates made by the openssl command, clients
from Python's ssl module, curl and ``openssl s_client``.

What the WSGI app sees over TLS (``wsgi.url_scheme``, HTTPS, the client certificate's subject in
SSL_CLIENT_S_DN), which TLS versions the listener accepts, and a static file through curl.
"""

import http.client
import json
import os
import shutil
import ssl
import subprocess

import pytest

TIMEOUT = 20


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate for CN=alice,O=Example."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=tern test CA", cwd=d)
    for name, subject, extension in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "/O=Example/CN=alice", "extendedKeyUsage=clientAuth"),
    ):
        openssl("req", *ec, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", subject, cwd=d)
        (d / f"{name}.ext").write_text(extension + "\n")
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d,
        )
    return d


def server_args(pki, *extra):
    return ("--certfile", str(pki / "server.pem"), "--keyfile", str(pki / "server-key.pem"), *extra)


def client_context(pki, with_certificate=False):
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if with_certificate:
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client-key.pem"))
    return context


def get_json(server, context, path="/"):
    connection = http.client.HTTPSConnection(*server.address, context=context, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


def test_the_app_sees_https_and_no_client_certificate(serve_app, pki):
    server = serve_app("tls_app", *server_args(pki))
    environ = get_json(server, client_context(pki))
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTPS"] == "on"
    assert environ["SSL_PROTOCOL"] == "TLSv1.3"
    assert environ["SSL_CIPHER"].startswith("TLS13_")
    assert environ["SSL_CLIENT_VERIFY"] == "NONE"
    assert environ["SSL_CLIENT_S_DN"] is None


def test_the_app_sees_the_client_certificate_subject(serve_app, pki):
    server = serve_app("tls_app", *server_args(pki, "--ca-certs", str(pki / "ca.pem"), "--client-cert", "optional"))
    environ = get_json(server, client_context(pki, with_certificate=True))
    assert environ["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert environ["SSL_CLIENT_S_DN"] == "CN=alice,O=Example"
    assert environ["SSL_CLIENT_I_DN"] == "CN=tern test CA"
    # Optional: a client without a certificate is served too.
    assert get_json(server, client_context(pki))["SSL_CLIENT_VERIFY"] == "NONE"


def test_required_client_certificate_refuses_a_client_without_one(serve_app, pki):
    server = serve_app("tls_app", *server_args(pki, "--ca-certs", str(pki / "ca.pem"), "--client-cert", "required"))
    assert get_json(server, client_context(pki, with_certificate=True))["SSL_CLIENT_S_DN"] == "CN=alice,O=Example"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get_json(server, client_context(pki))


def test_plain_http_listener_beside_keeps_http_scheme(start_server, pki, tmp_path):
    server = start_server(
        "serve", "tls_app", "--pythonpath", os.path.join(os.path.dirname(__file__), "apps"),
        *server_args(pki), "--bind", "http://127.0.0.1:0",
    )
    connection = http.client.HTTPConnection(*server.address, timeout=TIMEOUT)
    connection.request("GET", "/")
    environ = json.loads(connection.getresponse().read())
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["HTTPS"] is None


@pytest.mark.parametrize(
    "flag, accepted",
    [("-tls1", False), ("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)],
)
def test_openssl_s_client_versions(start_server, pki, tmp_path, flag, accepted):
    (tmp_path / "index.html").write_text("hello\n")
    server = start_server("serve", "-r", str(tmp_path), *server_args(pki))
    host, port = server.address
    # SECLEVEL=0 lets this client offer TLS 1.0 and 1.1 at all (OpenSSL 3 refuses them itself otherwise);
    # -ign_eof keeps it reading the response after its input ends (it hangs up at once otherwise).
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{host}:{port}", flag, "-CAfile", str(pki / "ca.pem"), "-cipher", "DEFAULT:@SECLEVEL=0", "-ign_eof"],
        input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        capture_output=True,
        timeout=TIMEOUT,
    )
    out = result.stdout.decode(errors="replace")
    if accepted:
        assert "Verify return code: 0 (ok)" in out, out + result.stderr.decode(errors="replace")
        assert "hello" in out
    else:
        assert result.returncode != 0 and "hello" not in out


def test_curl_fetches_a_static_file_over_https(start_server, pki, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    data = os.urandom(300_000)
    (tmp_path / "blob.bin").write_bytes(data)
    server = start_server("serve", "-r", str(tmp_path), *server_args(pki))
    host, port = server.address
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", "--cacert", str(pki / "ca.pem"), f"https://{host}:{port}/blob.bin"],
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


@pytest.mark.skipif(os.environ.get("TERN_TESTSSL") != "1", reason="slow: set TERN_TESTSSL=1 (needs Debian's testssl.sh)")
def test_testssl_finds_no_weak_protocol_or_cipher(start_server, pki, tmp_path):
    if shutil.which("testssl.sh") is None and shutil.which("testssl") is None:
        pytest.fail("TERN_TESTSSL=1 but testssl.sh is not installed (apt-get install testssl.sh)")
    (tmp_path / "index.html").write_text("hello\n")
    server = start_server("serve", "-r", str(tmp_path), *server_args(pki))
    host, port = server.address
    report = tmp_path / "testssl.json"
    command = shutil.which("testssl.sh") or shutil.which("testssl")
    subprocess.run(
        [command, "--quiet", "--color", "0", "--protocols", "--ciphers", "--jsonfile", str(report), f"{host}:{port}"],
        capture_output=True,
        timeout=600,
    )
    findings = json.loads(report.read_text())
    weak = [f for f in findings if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL")]
    assert not weak, json.dumps(weak, indent=1)


def test_an_asgi_app_over_https_sees_the_https_scheme(serve_app, pki):
    server = serve_app("asgi_app:app", *server_args(pki))
    scope = get_json(server, client_context(pki), "/scope")
    assert scope["scheme"] == "https"
    assert scope["type"] == "http"


def test_an_asgi_app_sees_the_tls_extension(serve_app, pki):
    server = serve_app("asgi_app:app", *server_args(pki, "--ca-certs", str(pki / "ca.pem"), "--client-cert", "optional"))
    tls = get_json(server, client_context(pki, with_certificate=True), "/scope")["extensions"]["tls"]
    assert tls["tls_version"] == 0x0304
    assert tls["cipher_suite"] in (0x1301, 0x1302, 0x1303)
    assert tls["client_cert_name"] == "CN=alice,O=Example"
    assert tls["client_cert_error"] is None
    assert tls["server_cert"] is None
    with open(pki / "client.pem") as pem:
        client_pem = pem.read()
    chain = tls["client_cert_chain"]
    assert len(chain) >= 1 and chain[0].startswith("-----BEGIN CERTIFICATE-----")
    assert ssl.PEM_cert_to_DER_cert(chain[0]) == ssl.PEM_cert_to_DER_cert(client_pem)
    # Without a client certificate: no chain, no name (a plain-HTTP scope has no tls key:
    # test_asgi.py checks its extensions whole).
    tls = get_json(server, client_context(pki), "/scope")["extensions"]["tls"]
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
