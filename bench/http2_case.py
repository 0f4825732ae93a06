"""The HTTP/2 case of the benchmark: static 19 B and 98 KB against nginx, and the WSGI hello app
against Granian (`--http 2`), loaded by h2load with 64 connections of 10 concurrent streams each.
wrk speaks only HTTP/1.1, and what HTTP/2 changes is many requests in flight on one connection,
which h2load's `-m` gives. Every server runs over TLS with the certificate of the HTTPS case and
h2 chosen by ALPN, as browsers speak HTTP/2 only over TLS; a run that negotiated anything but h2
is flagged in the table and left out of the targets."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from harness import CLIENT_CPU, UNIT_MS, Load, Server, free_port, median_load
from https_case import certificate
from peers import BENCH_DIR, nginx_config, tern_static, tern_wsgi, wsgi_peer

CONNECTIONS, STREAMS = 64, 10
# (case, path, peer, target ratio tern/peer)
CASES = [("HTTP/2 static 19 B", "/index.html", "nginx", 1.0), ("HTTP/2 static 98 KB", "/style.css", "nginx", 1.0),
         ("HTTP/2 WSGI hello", "/", "granian", 1.5)]
PEER_SETTINGS = {
    "nginx": "1 worker, sendfile, open_file_cache, keep-alive without limit, `http2` on its TLS listener",
    "granian": "`--interface wsgi --workers 1 --http 2` with `--ssl-certificate`/`--ssl-keyfile`, defaults otherwise",
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def parse_h2load(out):
    """Reads the rate, the problems (failed, errored and timed-out requests, non-2xx answers, a
    protocol other than h2) and the protocol spoken from h2load's output."""
    finished = re.search(r"^finished in \S+, ([\d.]+) req/s", out, re.M)
    counts = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", out, re.M)
    if not finished or not counts:
        raise RuntimeError(f"h2load printed no result:\n{out[-3000:]}")
    done, failed, errored, timeout = (int(counts.group(i)) for i in (3, 5, 6, 7))
    problems = []
    if failed or errored or timeout:
        problems.append(f"{failed} failed, {errored} errored, {timeout} timeout")
    statuses = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    non2xx = [f"{n} {kind}" for n, kind in zip(statuses.groups()[1:], ("3xx", "4xx", "5xx"))
              if int(n)] if statuses else []
    if non2xx:
        problems.append("non-2xx: " + ", ".join(non2xx))
    protocol = re.search(r"^Application protocol: (\S+)", out, re.M)
    tls = re.search(r"^TLS Protocol: (\S+)", out, re.M)
    spoken = f"{protocol.group(1) if protocol else 'no protocol'}, {tls.group(1) if tls else 'no TLS'}"
    if not protocol or protocol.group(1) != "h2":
        problems.append(f"spoke {spoken}, not h2")
    mean = re.search(r"^time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\s", out, re.M)
    return Load(float(finished.group(1)), problems=", ".join(problems), requests=done,
                mean=float(mean.group(1)) * UNIT_MS[mean.group(2)] if mean else None), spoken


def h2load(url, args):
    """One h2load run pinned to the client CPU: `args.warmup` s of warm-up on the same connections,
    then `args.duration` s measured."""
    argv = ["taskset", "-c", CLIENT_CPU, "h2load", "-t1", f"-c{CONNECTIONS}", f"-m{STREAMS}",
            f"--warm-up-time={args.warmup}s", f"-D{args.duration}s", url]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=args.warmup + args.duration + 60)
    return parse_h2load(result.stdout + result.stderr)


def measure_h2(url, args):
    """`args.runs` h2load runs; the median, and what each run spoke."""
    runs = [h2load(url, args) for _ in range(args.runs)]
    return median_load([load for load, _ in runs]), " / ".join(sorted({spoken for _, spoken in runs}))


def only_h2(spoken):
    """Whether every run of `measure_h2` spoke h2."""
    return all(one.startswith("h2,") for one in spoken.split(" / "))


def case_http2(ctx):
    """tern against nginx (static files) and Granian (WSGI hello) over HTTP/2 with TLS."""
    if shutil.which("h2load") is None:
        sys.exit("bench: h2load is not installed (bench/run.sh installs it: Debian's nghttp2-client)")
    work = Path(ctx.work_dir()) / "http2"
    work.mkdir(exist_ok=True)
    cert, key = certificate(work)
    site = ctx.site()

    def start(name, port):
        tls = ["--certfile", str(cert), "--keyfile", str(key)]
        if name == "nginx":
            return Server(name, nginx_config(work, site, port, tls=(cert, key), http2=True), port)
        if name == "granian":
            argv = wsgi_peer("granian", "apps:hello", port)  # the app comes last
            argv[-1:-1] = ["--http", "2", "--ssl-certificate", str(cert), "--ssl-keyfile", str(key)]
            return Server(name, argv, port, cwd=str(BENCH_DIR))
        if name == "tern static":
            return Server(name, [*tern_static(ctx.args.tern, site, port), *tls], port)
        return Server(name, [*tern_wsgi(ctx.args.tern_python, "apps:hello", port), *tls], port, cwd=str(BENCH_DIR))

    results = {}
    for tern, peer in (("tern static", "nginx"), ("tern wsgi", "granian")):
        cases = [c for c in CASES if c[2] == peer]
        for name in [tern, *ctx.peers([peer])]:
            port = free_port()
            server = start(name, port)
            try:
                for case, path, _, _ in cases:
                    load, spoken = measure_h2(f"https://127.0.0.1:{port}{path}", ctx.args)
                    results[(case, "tern" if name == tern else name)] = load, spoken
                    log(f"{case:22} {name:8} {load.rate:>10.0f} req/s ({spoken}) {load.problems}")
            finally:
                server.stop()
    rows = ["| case | peer | spoken (tern; peer) | tern req/s | peer req/s | ratio | target | errors |",
            "|---|---|---|---:|---:|---:|---|---|"]
    for case, _, peer, target in CASES:
        ours, our_spoken = results[(case, "tern")]
        if (case, peer) not in results:
            rows.append(f"| {case} | {peer} (absent) | {our_spoken} | {ours.rate:.0f} | – | – | >= {target} | "
                        f"{ours.problems} |")
            continue
        theirs, their_spoken = results[(case, peer)]
        spoken = our_spoken if our_spoken == their_spoken else f"{our_spoken}; {their_spoken}"
        errors = "; ".join(f"{n}: {r.problems}" for n, r in (("tern", ours), (peer, theirs)) if r.problems)
        measured = ours.rate > 0 and theirs.rate > 0 and only_h2(our_spoken) and only_h2(their_spoken)
        ratio = f"{ours.rate / theirs.rate:.2f}" if measured else "–"
        rows.append(f"| {case} | {peer} | {spoken} | {ours.rate:.0f} | {theirs.rate:.0f} | {ratio} | >= {target} | "
                    f"{errors} |")
        if measured:
            ctx.ratios.append((f"{case} vs {peer}", ours.rate / theirs.rate, target))
    rows += ["", f"h2load `-t1 -c {CONNECTIONS} -m {STREAMS}` pinned to CPU {CLIENT_CPU}, `--warm-up-time "
                 f"{ctx.args.warmup}s -D {ctx.args.duration}s` per run; every server over TLS, h2 chosen by ALPN. "
                 f"tern: defaults with `--certfile`/`--keyfile`."]
    rows += [f"{peer}: {settings}." for peer, settings in PEER_SETTINGS.items()]
    return rows
