"""The HTTPS case of the benchmark: static 19 B / 98 KB / 954 KB with keep-alive, and a new TLS
connection for every request, tern against nginx with TLS (both with one worker, a P-256
certificate made for the run, TLS 1.2 and 1.3; nginx with sendfile and a shared session cache).
Neither side uses kernel TLS: it needs the kernel's `tls` module, which this VM's kernel lacks."""

import subprocess
import sys
from pathlib import Path

from harness import Server, free_port, measure
from peers import nginx_config

CASES = [("HTTPS static 19 B", "/index.html", ()), ("HTTPS static 98 KB", "/style.css", ()),
         ("HTTPS static 954 KB", "/page.html", ()),
         ("HTTPS new connections (Connection: close)", "/index.html", ("Connection: close",))]
TARGET = 1.0


def log(message):
    print(message, file=sys.stderr, flush=True)


def certificate(directory):
    """A self-signed certificate for 127.0.0.1 (key and chain as PEM), made with openssl."""
    key, cert = directory / "server-key.pem", directory / "server.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )
    return cert, key


def case_https(ctx):
    """tern and nginx over TLS: three file sizes with keep-alive, and a handshake per request."""
    work = Path(ctx.work_dir()) / "https"
    work.mkdir(exist_ok=True)
    cert, key = certificate(work)
    site = ctx.site()
    servers = {
        "tern": lambda port: [str(ctx.args.tern), "serve", "-r", str(site), "--port", str(port),
                              "--certfile", str(cert), "--keyfile", str(key)],
        "nginx": lambda port: nginx_config(work, site, port, tls=(cert, key)),
    }
    names = ["tern", *ctx.peers(["nginx"])]
    results = {}
    for name in names:
        port = free_port()
        server = Server(name, servers[name](port), port)
        try:
            for case, path, headers in CASES:
                results[(case, name)] = measure(f"https://127.0.0.1:{port}{path}", 64, ctx.args, headers=headers)
                log(f"{case:42} {name:6} {results[(case, name)].rate:>10.0f} req/s {results[(case, name)].problems}")
        finally:
            server.stop()
    rows = ["| case | tern | nginx | ratio | target | errors |", "|---|---:|---:|---:|---|---|"]
    for case, _, _ in CASES:
        ours, peer = results[(case, "tern")], results.get((case, "nginx"))
        if peer is None:
            rows.append(f"| {case} | {ours.rate:.0f} | – | – | >= {TARGET} | {ours.problems} |")
            continue
        errors = "; ".join(f"{n}: {r.problems}" for n, r in (("tern", ours), ("nginx", peer)) if r.problems)
        rows.append(f"| {case} | {ours.rate:.0f} | {peer.rate:.0f} | {ours.rate / peer.rate:.2f} | >= {TARGET} | "
                    f"{errors} |")
        ctx.ratios.append((f"{case} vs nginx", ours.rate / peer.rate, TARGET))
    return rows
