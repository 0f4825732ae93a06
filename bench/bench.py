"""Runs tern and its peers side by side and writes a markdown report of ratios and a chart.

Method (see the shared design notes): each server runs one worker pinned to CPU 0; the load
generator (wrk -t1; oha for fixed-rate latency and counted requests; h2load for HTTP/2) runs pinned to CPU 1;
a warm-up, then 3 measured runs, the median reported, with every non-2xx response and socket error
shown next to its number. Everything on 127.0.0.1; every server is started and stopped by its PID.
tern runs with its defaults everywhere; each peer with the settings its docs recommend for the case
(bench/peers.py, named in the report). `--quick` runs one short round of every case to check the
harness: its figures are not measurements.
"""

import argparse
import datetime
import os
import platform
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from asgi_cases import case_asgi, case_websocket
from http2_case import CONNECTIONS as H2_CONNECTIONS, STREAMS as H2_STREAMS, case_http2
from https_case import case_https
from chart import svg_chart
from harness import CLIENT_CPU, SERVER_CPU, Server, free_port, median_load, measure, oha, proc_status_kib, wrk_together
from peers import BENCH_DIR, ROOT, SETTINGS, VENV_BIN, installed, nginx_config, tern_static, tern_wsgi, wsgi_peer

DJANGO_DIR = BENCH_DIR / "django_bench"
DJANGO_APP = "django_bench.wsgi:application"
DJANGO_URL_PATH = "/products/"


class Context:
    """What the cases share in one run: the options, the chart's ratios, the peaks measured so far
    (the tail-latency case reuses them), the Django database, and the peers found missing."""

    def __init__(self, args):
        self.args = args
        self.ratios = []
        self.peaks = {}
        self.skipped = []
        self._django_env = None
        self._work = tempfile.TemporaryDirectory(prefix="tern-bench-")

    def peers(self, names):
        """The peers of `names` that are installed; a missing one stops the run unless
        --allow-missing-peers, when it is left out and named in the report."""
        found = []
        for name in names:
            if installed(name):
                found.append(name)
            elif self.args.allow_missing_peers:
                self.skipped.append(name)
                log(f"peer {name} is not installed: left out")
            else:
                sys.exit(f"bench: peer {name} is not installed (bench/run.sh installs every peer); "
                         f"--allow-missing-peers leaves missing peers out")
        return found

    def django_env(self):
        """A freshly migrated SQLite database with the 20 rows, made once per run; the environment
        that points the project at it."""
        if self._django_env is None:
            db = Path(self._work.name) / "django-bench.sqlite3"
            env = {**os.environ, "DJANGO_BENCH_DB": str(db)}
            manage = [str(VENV_BIN / "python"), str(DJANGO_DIR / "manage.py")]
            subprocess.run([*manage, "migrate", "--verbosity", "0"], env=env, check=True)
            subprocess.run([*manage, "seed_catalog"], env=env, check=True, stdout=subprocess.DEVNULL)
            self._django_env = {"DJANGO_BENCH_DB": str(db)}
        return self._django_env

    def site(self):
        """The static files: 19 B, 98 KB and 954 KB, in a directory nginx's workers can read."""
        site = Path(self._work.name) / "site"
        if not site.exists():
            os.chmod(self._work.name, 0o755)
            site.mkdir()
            (site / "index.html").write_bytes(b"Hello, benchmark!!\n")  # 19 bytes
            line = b"body { margin: 0 auto; padding: 1rem; font-family: sans-serif; color: #333; }\n"
            (site / "style.css").write_bytes((line * (98_000 // len(line) + 1))[:98_000])
            para = b"<p>tern serves this paragraph as part of a large page, over and over again.</p>\n"
            (site / "page.html").write_bytes((para * (954_000 // len(para) + 1))[:954_000])
        return site

    def static_server(self, name, port):
        """tern or nginx serving the static site on `port`."""
        if name == "tern":
            return Server(name, tern_static(self.args.tern, self.site(), port), port)
        nginx_dir = Path(self._work.name) / "nginx"
        nginx_dir.mkdir(exist_ok=True)
        return Server(name, nginx_config(nginx_dir, self.site(), port), port)

    def wsgi_server(self, name, target, port, cwd=BENCH_DIR, env=None):
        """tern or WSGI peer `name` serving `target` ("module:callable" importable from `cwd`)."""
        argv = tern_wsgi(self.args.tern_python, target, port) if name == "tern" else wsgi_peer(name, target, port)
        return Server(name, argv, port, cwd=str(cwd), env=env)

    def work_dir(self):
        """This run's scratch directory (removed at the end)."""
        return self._work.name

    def close(self):
        self._work.cleanup()


def log(message):
    print(message, file=sys.stderr, flush=True)


def fmt_ms(value):
    return "–" if value is None else f"{value:.2f}"


def errors_of(results):
    """The problems column: every server's errors, named."""
    return "; ".join(f"{name}: {load.problems}" for name, load in results.items() if load.problems)


def settings_of(name):
    return "defaults" if name == "tern" else SETTINGS.get(name, "")


# --- the first cases: static files against nginx, three WSGI apps, the line service ---------------

STATIC_CASES = [("static 19 B", "/index.html", 64, 1.2), ("static 98 KB", "/style.css", 64, 1.0),
                ("static 954 KB", "/page.html", 64, 0.95)]


def idle_memory_per_connection(server, count):
    """RSS growth of the worker per idle keep-alive connection that made one request."""
    pid = server.worker_pid()
    before = proc_status_kib(pid, "VmRSS")
    sockets = []
    request = b"GET /index.html HTTP/1.1\r\nHost: bench\r\n\r\n"
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(request)
        sockets.append(s)
    for s in sockets:
        s.settimeout(30)
        if not s.recv(4096).startswith(b"HTTP/1.1 200"):
            raise RuntimeError("idle-memory request failed")
    time.sleep(1)
    after = proc_status_kib(pid, "VmRSS")
    for s in sockets:
        s.close()
    return (after - before) * 1024 / count


def case_static(ctx):
    """tern against nginx on the three static files, plus memory per idle connection."""
    rows = ["| case | peer | tern | peer | ratio | target | errors |", "|---|---|---:|---:|---:|---|---|"]
    results = {}
    for name in ["tern", *ctx.peers(["nginx"])]:
        port = free_port()
        server = ctx.static_server(name, port)
        try:
            for case, path, connections, _ in STATIC_CASES:
                results[(case, name)] = measure(f"http://127.0.0.1:{port}{path}", connections, ctx.args)
                log(f"{case:14} {name:6} {results[(case, name)].rate:>10.0f} req/s {results[(case, name)].problems}")
            results[("idle memory", name)] = idle_memory_per_connection(server, ctx.args.idle)
            log(f"idle memory    {name:6} {results[('idle memory', name)]:.0f} B/conn")
        finally:
            server.stop()
    for case, _, _, target in STATIC_CASES:
        ours = results[(case, "tern")]
        peer = results.get((case, "nginx"))
        if peer is None:
            rows.append(f"| {case} | nginx (absent) | {ours.rate:.0f} | – | – | >= {target} | {ours.problems} |")
            continue
        ctx.peaks[("nginx", case)] = peer.rate
        errors = errors_of({"tern": ours, "nginx": peer})
        rows.append(f"| {case} | nginx | {ours.rate:.0f} | {peer.rate:.0f} | {ours.rate / peer.rate:.2f} | "
                    f">= {target} | {errors} |")
        ctx.ratios.append((f"{case} vs nginx", ours.rate / peer.rate, target))
    ours, peer = results[("idle memory", "tern")], results.get(("idle memory", "nginx"))
    if peer is not None:
        rows.append(f"| idle keep-alive memory (bytes/conn) | nginx | {ours:.0f} | {peer:.0f} | "
                    f"{peer / ours:.2f} | >= 1.0 (nginx/tern) | |")
        ctx.ratios.append(("idle memory, nginx/tern", peer / ours, 1.0))
    return rows


# (case, app in bench/apps.py, connections, wrk script, peers, (target peer, target ratio)).
# The slow app's target is a share of its ceiling: 256 connections / 10 ms = 25,600 req/s.
SLOW_CEILING = 25_600
WSGI_CASES = [
    ("WSGI hello", "hello", 64, None, ["bjoern", "granian", "gunicorn sync", "uwsgi"], ("bjoern", 1.1)),
    ("WSGI slow app", "slow", 256, None, ["granian", "gunicorn gthread 64", "uwsgi 64 threads"], ("ceiling", 0.95)),
    ("WSGI echo 10 KB", "echo", 64, "post10k.lua", ["bjoern", "granian"], ("bjoern", 1.0)),
]


def case_wsgi(ctx):
    """tern and its peers on the hello, slow and echo apps."""
    rows = ["| case | peer | tern | peer | ratio | target | errors |", "|---|---|---:|---:|---:|---|---|"]
    for case, app, connections, script, peers, (target_peer, target) in WSGI_CASES:
        script_path = str(BENCH_DIR / script) if script else None
        results = {}
        for name in ["tern", *ctx.peers(peers)]:
            port = free_port()
            server = ctx.wsgi_server(name, f"apps:{app}", port)
            try:
                results[name] = measure(f"http://127.0.0.1:{port}/", connections, ctx.args, script_path)
            finally:
                server.stop()
            log(f"{case:16} {name:20} {results[name].rate:>10.0f} req/s {results[name].problems}")
        ours = results["tern"]
        for name in results:
            if name == "tern":
                continue
            peer = results[name]
            errors = errors_of({"tern": ours, name: peer})
            marker = f">= {target}" if name == target_peer else ""
            rows.append(f"| {case} | {name} | {ours.rate:.0f} | {peer.rate:.0f} | {ours.rate / peer.rate:.2f} | "
                        f"{marker} | {errors} |")
            ctx.peaks[(name, case)] = peer.rate
        if target_peer == "ceiling":
            rows.append(f"| {case} | ceiling | {ours.rate:.0f} | {SLOW_CEILING} | {ours.rate / SLOW_CEILING:.2f} | "
                        f">= {target} | |")
            ctx.ratios.append((f"{case}, share of ceiling", ours.rate / SLOW_CEILING, target))
        elif target_peer in results:
            ctx.ratios.append((f"{case} vs {target_peer}", ours.rate / results[target_peer].rate, target))
        if case == "WSGI hello" and "granian" in results:
            ctx.ratios.append((f"{case} vs granian", ours.rate / results["granian"].rate, 2.0))
    return rows


def case_lines(ctx):
    """tern's load client against `tern echo`: 1000 connections."""
    tern = ctx.args.tern
    port = free_port()
    server = Server("tern echo", [str(tern), "echo", "--port", str(port), "--no-access-log"], port)
    try:
        out = subprocess.run(
            ["taskset", "-c", CLIENT_CPU, str(tern), "client", f"127.0.0.1:{port}", "-c", "1000",
             "--duration", str(ctx.args.duration), "--message", "ping", "--expect", "ping"],
            capture_output=True, text=True,
        ).stdout
    finally:
        server.stop()
    rate = float(re.search(r"throughput: ([\d.]+)", out).group(1))
    p99 = float(re.search(r"p99 ([\d.]+) ms", out).group(1))
    failed = re.search(r"(\d+) failed", out.split("messages:")[1]).group(1)
    log(f"line echo      tern   {rate:>10.0f} msg/s p99 {p99} ms, {failed} failed")
    return [f"Line echo (`tern client -c 1000 --duration {ctx.args.duration}` against `tern echo`): "
            f"{rate:.0f} messages/s, p99 {p99} ms, {failed} failed."]


# --- the cases users judge by ------------------------------------------------------------------------

def best(results, key, lowest=False, exclude=()):
    """(name, value) of the best peer in `results` (tern and `exclude` left out) by `key`."""
    peers = {name: key(load) for name, load in results.items()
             if name != "tern" and name not in exclude and key(load) is not None}
    if not peers:
        return None, None
    name = (min if lowest else max)(peers, key=peers.get)
    return name, peers[name]


def target_rows(ctx, case, comparisons):
    """Summary lines under a case's table, and the chart's bars: `comparisons` is a list of
    (what, tern's value, best peer's name, its value, target, higher_is_better, unit)."""
    lines = []
    for what, ours, peer_name, theirs, target, higher_is_better, unit in comparisons:
        if peer_name is None or ours is None or theirs is None or ours == 0:
            lines.append(f"- {what}: no peer measured")
            continue
        ratio = ours / theirs if higher_is_better else theirs / ours
        label = f"tern/{peer_name}" if higher_is_better else f"{peer_name}/tern"
        met = "met" if ratio >= target else "missed"
        lines.append(f"- {what}: tern {ours:,.2f} {unit}, best peer {peer_name} {theirs:,.2f} {unit}: "
                     f"{label} = **{ratio:.2f}**, target >= {target} ({met})")
        ctx.ratios.append((f"{case} {what}, {label}", ratio, target))
    return lines


STARVED_SHARE = 0.5


def flag_starved(load, connections, note="left out of the latency comparison"):
    """Marks a run whose server kept most of the connections waiting (Little's law from wrk's mean
    latency): their requests never finished, so its latency figures leave them out and cannot win a
    latency comparison (`note` says what the caller does with the run). Returns whether it did."""
    busy = load.busy_connections()
    if busy is None or busy >= STARVED_SHARE * connections:
        return False
    text = f"served about {busy:.0f} of {connections} connections at a time, the others waited unanswered ({note})"
    load.problems = f"{load.problems}; {text}" if load.problems else text
    return True


MIXED_SLOW_CONNECTIONS, MIXED_FAST_CONNECTIONS = 200, 56
MIXED_PEERS = ["granian", "gunicorn gthread 64", "uwsgi 64 threads", "waitress 64 threads"]


def case_mixed(ctx):
    """One app, two routes: 200 connections loop on /slow (100 ms) while 56 loop on /fast; two wrk
    at once, both on the client CPU. A server whose slow calls hold up fast ones shows it here."""
    rows = ["| server | settings | /fast req/s | /fast p99 ms | /slow req/s | errors |", "|---|---|---:|---:|---:|---|"]
    fast_results, slow_results, starved, slow_starved = {}, {}, set(), set()
    args = ctx.args
    for name in ["tern", *ctx.peers(MIXED_PEERS)]:
        port = free_port()
        server = ctx.wsgi_server(name, "apps:mixed", port)
        base = f"http://127.0.0.1:{port}"
        loads = [(f"{base}/slow", MIXED_SLOW_CONNECTIONS, None, ()), (f"{base}/fast", MIXED_FAST_CONNECTIONS, None, ())]
        try:
            wrk_together(loads, args.warmup)
            runs = [wrk_together(loads, args.duration) for _ in range(args.runs)]
        finally:
            server.stop()
        slow_results[name] = median_load([slow for slow, _ in runs])
        fast_results[name] = median_load([fast for _, fast in runs])
        fast, slow = fast_results[name], slow_results[name]
        if flag_starved(fast, MIXED_FAST_CONNECTIONS):
            starved.add(name)
        # A server that leaves most /slow connections waiting is not running the mixed workload:
        # its /fast figures (rate and latency) are left out of the comparison.
        if flag_starved(slow, MIXED_SLOW_CONNECTIONS, note="its /fast figures left out of the comparison"):
            starved.add(name)
            slow_starved.add(name)
        errors = "; ".join(f"{route}: {load.problems}" for route, load in (("/fast", fast), ("/slow", slow))
                           if load.problems)
        rows.append(f"| {name} | {settings_of(name)} | {fast.rate:.0f} | {fmt_ms(fast.p99)} | {slow.rate:.0f} | {errors} |")
        log(f"mixed          {name:20} /fast {fast.rate:>8.0f} req/s p99 {fmt_ms(fast.p99)} ms, "
            f"/slow {slow.rate:>6.0f} req/s {errors}")
    ours = fast_results["tern"]
    p99_peer, p99_best = best(fast_results, lambda load: load.p99, lowest=True, exclude=starved)
    rate_peer, rate_best = best(fast_results, lambda load: load.rate, exclude=slow_starved)
    rows.append("")
    rows += target_rows(ctx, "mixed", [
        ("/fast p99", ours.p99, p99_peer, p99_best, 3.0, False, "ms"),
        ("/fast rate", ours.rate, rate_peer, rate_best, 1.5, True, "req/s"),
    ])
    return rows


DJANGO_PEERS = ["granian", "gunicorn gthread 4", "uwsgi"]
DJANGO_CONNECTIONS = 64


def case_django(ctx):
    """The Django project in bench/django_bench: a view reading 20 rows through the ORM and
    rendering a template, at 64 connections."""
    env = ctx.django_env()
    rows = ["| server | settings | req/s | p99 ms | errors |", "|---|---|---:|---:|---|"]
    results, starved = {}, set()
    for name in ["tern", *ctx.peers(DJANGO_PEERS)]:
        port = free_port()
        server = ctx.wsgi_server(name, DJANGO_APP, port, cwd=DJANGO_DIR, env=env)
        try:
            results[name] = measure(f"http://127.0.0.1:{port}{DJANGO_URL_PATH}", DJANGO_CONNECTIONS, ctx.args)
        finally:
            server.stop()
        load = results[name]
        if flag_starved(load, DJANGO_CONNECTIONS):
            starved.add(name)
        rows.append(f"| {name} | {settings_of(name)} | {load.rate:.0f} | {fmt_ms(load.p99)} | {load.problems} |")
        log(f"django         {name:20} {load.rate:>10.0f} req/s p99 {fmt_ms(load.p99)} ms {load.problems}")
    ours = results["tern"]
    rate_peer, rate_best = best(results, lambda load: load.rate)
    p99_peer, p99_best = best(results, lambda load: load.p99, lowest=True, exclude=starved)
    rows.append("")
    rows += target_rows(ctx, "Django", [
        ("rate", ours.rate, rate_peer, rate_best, 1.05, True, "req/s"),
        ("p99", ours.p99, p99_peer, p99_best, 1.0, False, "ms"),
    ])
    return rows


# (sub-case, peer, the peer's peak measured by which earlier case, how to start a server).
TAIL_CASES = [
    ("static 19 B", "nginx", "static 19 B", "/index.html"),
    ("WSGI hello", "granian", "WSGI hello", "/"),
]
TAIL_SHARE_OF_PEAK = 0.5
TAIL_CONNECTIONS = 64
TAIL_RATE_KEPT = 0.95


def case_tail_latency(ctx):
    """Static 19 B against nginx and WSGI hello against Granian at a fixed rate, half the peer's
    peak measured in this run; latency from when each request was due (oha --latency-correction),
    so a stall counts for every request it delayed."""
    if harness.oha_path() is None:
        sys.exit("bench: oha is not installed (bench/run.sh installs it with cargo install oha)")
    args = ctx.args
    rows = ["| case | server | rate asked | rate served | p99 ms | p99.9 ms | errors |",
            "|---|---|---:|---:|---:|---:|---|"]
    notes = []
    for case, peer, peak_case, path in TAIL_CASES:
        if not ctx.peers([peer]):
            notes.append(f"- {case}: {peer} absent, not measured")
            continue

        def start(name, port):
            if case.startswith("static"):
                return ctx.static_server(name, port)
            return ctx.wsgi_server(name, "apps:hello", port)

        peak = ctx.peaks.get((peer, peak_case))
        if peak is None:
            port = free_port()
            server = start(peer, port)
            try:
                peak = measure(f"http://127.0.0.1:{port}{path}", 64, args).rate
            finally:
                server.stop()
            ctx.peaks[(peer, peak_case)] = peak
        rate = peak * TAIL_SHARE_OF_PEAK
        log(f"tail {case:12} {peer} peak {peak:.0f} req/s: fixed rate {rate:.0f} req/s")
        results = {}
        for name in ["tern", peer]:
            port = free_port()
            server = start(name, port)
            url = f"http://127.0.0.1:{port}{path}"
            try:
                oha(url, TAIL_CONNECTIONS, seconds=args.warmup, rate=rate)
                results[name] = median_load([oha(url, TAIL_CONNECTIONS, seconds=args.duration, rate=rate)
                                             for _ in range(args.runs)])
            finally:
                server.stop()
            load = results[name]
            if load.rate < TAIL_RATE_KEPT * rate:
                # The server (or oha, if both fall short) could not keep up: latency counts from when
                # each request was due, so the figures then measure the backlog, not the server's tail.
                short = f"{load.rate / rate:.0%} of the asked rate served"
                load.problems = f"{load.problems}; {short}" if load.problems else short
            rows.append(f"| {case} | {name} | {rate:.0f} | {load.rate:.0f} | {fmt_ms(load.p99)} | "
                        f"{fmt_ms(load.p999)} | {load.problems} |")
            log(f"tail {case:12} {name:8} served {load.rate:.0f} req/s p99 {fmt_ms(load.p99)} ms "
                f"p99.9 {fmt_ms(load.p999)} ms {load.problems}")
        ours, theirs = results["tern"], results[peer]
        notes += target_rows(ctx, f"tail {case}", [
            ("p99", ours.p99, peer, theirs.p99, 1.0, False, "ms"),
            ("p99.9", ours.p999, peer, theirs.p999, 1.0, False, "ms"),
        ])
    return [*rows, "", *notes]


def case_new_connections(ctx):
    """Static 19 B with `Connection: close` on every request: a new TCP connection each time, so
    what is measured is the accept path."""
    rows = ["| server | settings | req/s | p99 ms | errors |", "|---|---|---:|---:|---|"]
    results = {}
    for name in ["tern", *ctx.peers(["nginx"])]:
        port = free_port()
        server = ctx.static_server(name, port)
        try:
            results[name] = measure(f"http://127.0.0.1:{port}/index.html", 64, ctx.args, headers=["Connection: close"])
        finally:
            server.stop()
        load = results[name]
        rows.append(f"| {name} | {settings_of(name)} | {load.rate:.0f} | {fmt_ms(load.p99)} | {load.problems} |")
        log(f"new conns      {name:8} {load.rate:>10.0f} req/s p99 {fmt_ms(load.p99)} ms {load.problems}")
    peer, theirs = best(results, lambda load: load.rate)
    return [*rows, "", *target_rows(ctx, "new connections", [
        ("rate", results["tern"].rate, peer, theirs, 1.0, True, "req/s")])]


UPLOAD_PEERS = ["granian", "gunicorn gthread 4"]


def case_upload(ctx):
    """A 10 MB POST that the app reads in full, at 16 connections; with the worker's peak memory."""
    rows = ["| server | settings | req/s | p99 ms | worker peak RSS MiB | errors |", "|---|---|---:|---:|---:|---|"]
    results = {}
    for name in ["tern", *ctx.peers(UPLOAD_PEERS)]:
        port = free_port()
        server = ctx.wsgi_server(name, "apps:upload", port)
        try:
            results[name] = measure(f"http://127.0.0.1:{port}/", 16, ctx.args, str(BENCH_DIR / "post10m.lua"))
            peak_rss = proc_status_kib(server.worker_pid(), "VmHWM") / 1024
        finally:
            server.stop()
        load = results[name]
        rows.append(f"| {name} | {settings_of(name)} | {load.rate:.1f} | {fmt_ms(load.p99)} | {peak_rss:.0f} | "
                    f"{load.problems} |")
        log(f"upload 10 MB   {name:20} {load.rate:>8.1f} req/s p99 {fmt_ms(load.p99)} ms, "
            f"peak RSS {peak_rss:.0f} MiB {load.problems}")
    peer, theirs = best(results, lambda load: load.rate)
    return [*rows, "", *target_rows(ctx, "upload 10 MB", [("rate", results["tern"].rate, peer, theirs, 1.0, True,
                                                                    "req/s")])]


MEMORY_PEERS = ["granian", "gunicorn sync", "gunicorn gthread 4"]


def case_app_memory(ctx):
    """The resident memory of the one worker serving the Django project after N requests (100k by
    default), sent by oha at 64 connections."""
    if harness.oha_path() is None:
        sys.exit("bench: oha is not installed (bench/run.sh installs it with cargo install oha)")
    env = ctx.django_env()
    count = ctx.args.memory_requests
    rows = [f"| server | settings | RSS after {count:,} requests, MiB | errors |", "|---|---|---:|---|"]
    rss = {}
    for name in ["tern", *ctx.peers(MEMORY_PEERS)]:
        port = free_port()
        server = ctx.wsgi_server(name, DJANGO_APP, port, cwd=DJANGO_DIR, env=env)
        try:
            load = oha(f"http://127.0.0.1:{port}{DJANGO_URL_PATH}", 64, requests=count)
            rss[name] = proc_status_kib(server.worker_pid(), "VmRSS") / 1024
        finally:
            server.stop()
        rows.append(f"| {name} | {settings_of(name)} | {rss[name]:.1f} | {load.problems} |")
        log(f"app memory     {name:20} {rss[name]:.1f} MiB after {load.requests} requests {load.problems}")
    peers = {name: value for name, value in rss.items() if name != "tern"}
    peer = min(peers, key=peers.get) if peers else None
    return [*rows, "", *target_rows(ctx, "Django", [("worker RSS", rss["tern"], peer, peers.get(peer), 1.0, False,
                                                     "MiB")])]


# name: (title, function); the order they run in.
CASES = {
    "static": ("Static files against nginx (c=64), and memory per idle keep-alive connection", case_static),
    "wsgi": ("WSGI apps: hello (c=64), slow `sleep(0.01)` (c=256), echo of a 10 KB POST (c=64)", case_wsgi),
    "mixed": (f"Mixed app: {MIXED_SLOW_CONNECTIONS} connections on `/slow` (`sleep(0.1)`) while "
              f"{MIXED_FAST_CONNECTIONS} loop on `/fast` (13 B); two wrk at once on CPU {CLIENT_CPU}", case_mixed),
    "django": ("Django: 20 rows from SQLite through the ORM, rendered by a template (c=64)", case_django),
    "tail-latency": (f"Tail latency at a fixed rate, {TAIL_SHARE_OF_PEAK:.0%} of the peer's peak in this run "
                     f"(oha, c={TAIL_CONNECTIONS}, corrected for coordinated omission)", case_tail_latency),
    "new-connections": ("New connections: static 19 B with `Connection: close` on every request (c=64)",
                        case_new_connections),
    "upload": ("Upload: a 10 MB POST read by the app (c=16)", case_upload),
    "app-memory": ("App memory: one worker serving the Django project", case_app_memory),
    "https": ("HTTPS static files against nginx with TLS (c=64): keep-alive, and a new connection per request",
              case_https),
    "http2": (f"HTTP/2 over TLS (h2load -c {H2_CONNECTIONS} -m {H2_STREAMS}): static files against nginx, WSGI hello "
              f"against Granian", case_http2),
    "asgi": ("ASGI apps: hello (c=64), a FastAPI JSON endpoint (c=64), slow `await asyncio.sleep(0.01)` (c=256)",
             case_asgi),
    "websocket": ("ASGI WebSockets: echo of 64 B text messages on 256 connections (`tern client --websocket`), "
                  "and memory per idle session", case_websocket),
    "lines": ("Line echo", case_lines),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one short round of every case (1 s warm-up, one 2 s run): checks the harness, "
                             "gives no numbers to quote; writes quick.md and quick-chart.svg")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up (default 2)")
    parser.add_argument("--duration", type=int, help="seconds per measured run (default 8)")
    parser.add_argument("--runs", type=int, help="measured runs, the median reported (default 3)")
    parser.add_argument("--idle", type=int, help="idle connections for the memory case (default 10000)")
    parser.add_argument("--memory-requests", type=int, help="requests before the app-memory reading (default 100000)")
    parser.add_argument("--only-case", "--only", dest="only", action="append", choices=list(CASES), metavar="CASE",
                        help=f"run only this case (repeatable): {', '.join(CASES)}")
    parser.add_argument("--allow-missing-peers", action="store_true",
                        help="leave out peers that are not installed instead of stopping")
    parser.add_argument("--tern", default=str(ROOT / "target" / "release" / "tern"),
                        help="the tern binary for static files and line services (default target/release/tern)")
    parser.add_argument("--tern-python", default=str(VENV_BIN / "tern"),
                        help="the pip-installed tern for WSGI apps (default bench/.venv/bin/tern)")
    parser.add_argument("--out", type=Path,
                        help="directory for the report and chart (default bench/results/ and bench/chart.svg)")
    args = parser.parse_args(argv)
    defaults = dict(warmup=1, duration=2, runs=1, idle=1_000, memory_requests=2_000) if args.quick else \
        dict(warmup=2, duration=8, runs=3, idle=10_000, memory_requests=100_000)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main():
    args = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.out:
        report_path = args.out / ("quick.md" if args.quick else "latest.md")
        chart_path = args.out / ("quick-chart.svg" if args.quick else "chart.svg")
    elif args.quick:
        report_path, chart_path = BENCH_DIR / "results" / "quick.md", BENCH_DIR / "results" / "quick-chart.svg"
    else:
        report_path, chart_path = BENCH_DIR / "results" / "latest.md", BENCH_DIR / "chart.svg"
    report_path.parent.mkdir(parents=True, exist_ok=True)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}"
    command = ("bench/run.sh " + " ".join(sys.argv[1:])).strip()
    ctx = Context(args)
    lines = [
        f"# tern benchmark, {stamp}" + (" — QUICK RUN (harness check, not numbers)" if args.quick else ""),
        "",
        f"Machine: {machine}. Server pinned to CPU {SERVER_CPU} (one worker; tern with its defaults), "
        f"load generator (`wrk -t1`, oha or h2load) pinned to CPU {CLIENT_CPU}; {args.warmup} s warm-up, "
        f"median of {args.runs} runs of {args.duration} s. Command: `{command}`.",
        "",
    ]
    summary_at = len(lines)
    try:
        for name, (title, run_case) in CASES.items():
            if args.only and name not in args.only:
                continue
            log(f"== {name}")
            lines += [f"## {title}", "", *run_case(ctx), ""]
    finally:
        ctx.close()
    summary = ["| comparison | ratio | target | |", "|---|---:|---:|---|"]
    summary += [f"| {label} | {ratio:.2f} | >= {target} | {'✔' if ratio >= target else '✘'} |"
                for label, ratio, target in ctx.ratios]
    if ctx.skipped:
        summary += ["", f"Peers not installed, left out: {', '.join(sorted(set(ctx.skipped)))}."]
    lines[summary_at:summary_at] = ["## Targets (rates tern/peer; latencies and memory peer/tern)", "", *summary, ""]
    report = "\n".join(lines)
    report_path.write_text(report)
    print(report)
    log(f"report: {report_path}")
    if ctx.ratios:
        chart_stamp = f"{stamp}, QUICK RUN (harness check, not numbers)" if args.quick else stamp
        chart_path.write_text(svg_chart(ctx.ratios, chart_stamp, machine, command, args, SERVER_CPU, CLIENT_CPU))
        log(f"chart: {chart_path}")


if __name__ == "__main__":
    main()
