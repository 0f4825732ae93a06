"""Runs tern and its peers side by side and prints a markdown table of ratios.

Method (see shared design notes): each server runs one worker pinned to CPU 0, wrk runs pinned to
CPU 1 with one thread; 2 s warm-up, then 3 measured runs of 8 s, the median reported, with every
non-2xx response and socket error shown next to its number. Everything on 127.0.0.1; every server
is started and stopped by its PID.
"""

import argparse
import datetime
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TERN = ROOT / "target" / "release" / "tern"
RESULTS = ROOT / "bench" / "results"
SERVER_CPU = "0"
CLIENT_CPU = "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Server:
    """A server process started pinned to the server CPU, stopped by PID."""

    def __init__(self, name, argv, port, cwd=None):
        self.name, self.port = name, port
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *argv],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port)

    def worker_pid(self):
        """The process that serves (tern's and nginx's worker, a child of the master)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0]) if children else self.process.pid

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wrk(url, connections, seconds, script=None):
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        argv += ["-s", script]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    problems = []
    if non2xx:
        problems.append(f"{non2xx.group(1)} non-2xx")
    if errors and any(int(n) for n in errors.groups()):
        problems.append("socket errors c/r/w/t " + "/".join(errors.groups()))
    return rps, ", ".join(problems)


def measure(url, connections, args, script=None):
    wrk(url, connections, args.warmup, script)
    runs = [wrk(url, connections, args.duration, script) for _ in range(args.runs)]
    rates = sorted(r for r, _ in runs)
    problems = "; ".join(p for _, p in runs if p)
    return statistics.median(rates), problems


def make_site(directory):
    site = Path(directory)
    (site / "index.html").write_bytes(b"Hello, benchmark!!\n")  # 19 bytes
    line = b"body { margin: 0 auto; padding: 1rem; font-family: sans-serif; color: #333; }\n"
    (site / "style.css").write_bytes((line * (98_000 // len(line) + 1))[:98_000])
    para = b"<p>tern serves this paragraph as part of a large page, over and over again.</p>\n"
    (site / "page.html").write_bytes((para * (954_000 // len(para) + 1))[:954_000])
    return site


def nginx_config(directory, site, port):
    conf = Path(directory) / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log;
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
    server {{ listen 127.0.0.1:{port}; root {site}; }}
}}
""")
    return ["nginx", "-c", str(conf), "-p", str(directory)]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def idle_memory_per_connection(server, count):
    """RSS growth of the worker per idle keep-alive connection that made one request."""
    pid = server.worker_pid()
    before = rss_kib(pid)
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
    after = rss_kib(pid)
    for s in sockets:
        s.close()
    return (after - before) * 1024 / count


def line_echo(args):
    port = free_port()
    server = Server("tern echo", [str(TERN), "echo", "--port", str(port), "--no-access-log"], port)
    try:
        out = subprocess.run(
            ["taskset", "-c", CLIENT_CPU, str(TERN), "client", f"127.0.0.1:{port}", "-c", "1000",
             "--duration", str(args.duration), "--message", "ping", "--expect", "ping"],
            capture_output=True, text=True,
        ).stdout
    finally:
        server.stop()
    rate = float(re.search(r"throughput: ([\d.]+)", out).group(1))
    p99 = float(re.search(r"p99 ([\d.]+) ms", out).group(1))
    failed = re.search(r"(\d+) failed", out.split("messages:")[1]).group(1)
    return rate, p99, failed


VENV_BIN = ROOT / "bench" / ".venv" / "bin"


def wsgi_peers(app, port):
    """Peer command lines for one WSGI app (bench/apps.py), each with one worker."""
    python = str(VENV_BIN / "python")
    bench_dir = str(ROOT / "bench")
    return {
        "bjoern": [python, "-c", f"import bjoern, apps; bjoern.run(apps.{app}, '127.0.0.1', {port})"],
        "granian": [str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", "1", "--host", "127.0.0.1",
                    "--port", str(port), "--no-ws", "--log-level", "warning", f"apps:{app}"],
        "gunicorn sync": [str(VENV_BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", f"apps:{app}"],
        "gunicorn gthread 64": [str(VENV_BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "64",
                                "-b", f"127.0.0.1:{port}", f"apps:{app}"],
        "uwsgi": [str(VENV_BIN / "uwsgi"), "--http11-socket", f"127.0.0.1:{port}", "--wsgi-file", "apps.py",
                  "--callable", app, "--processes", "1", "--disable-logging", "--chdir", bench_dir],
        "uwsgi 64 threads": [str(VENV_BIN / "uwsgi"), "--http11-socket", f"127.0.0.1:{port}", "--wsgi-file",
                             "apps.py", "--callable", app, "--processes", "1", "--threads", "64",
                             "--disable-logging", "--chdir", bench_dir],
    }


# (case, app in bench/apps.py, connections, wrk script, peers, (target peer, target ratio)).
# The slow app's target is a share of its ceiling: 256 connections / 10 ms = 25,600 req/s.
SLOW_CEILING = 25_600
WSGI_CASES = [
    ("WSGI hello", "hello", 64, None, ["bjoern", "granian", "gunicorn sync", "uwsgi"], ("bjoern", 1.1)),
    ("WSGI slow app", "slow", 256, None, ["granian", "gunicorn gthread 64", "uwsgi 64 threads"], ("ceiling", 0.95)),
    ("WSGI echo 10 KB", "echo", 64, "post10k.lua", ["bjoern", "granian"], ("bjoern", 1.0)),
]


def tern_wsgi(app, port):
    """tern as pip installed into bench/.venv, with its default settings."""
    return [str(VENV_BIN / "tern"), "serve", f"apps:{app}", "--port", str(port)]


def measure_wsgi(args, ratios):
    """tern and its peers on each WSGI case; appends chart ratios and returns the table rows."""
    rows = []
    for case, app, connections, script, peers, (target_peer, target) in WSGI_CASES:
        script_path = str(ROOT / "bench" / script) if script else None
        results = {}
        for name in ["tern", *peers]:
            port = free_port()
            argv = tern_wsgi(app, port) if name == "tern" else wsgi_peers(app, port)[name]
            server = Server(name, argv, port, cwd=str(ROOT / "bench"))
            try:
                results[name] = measure(f"http://127.0.0.1:{port}/", connections, args, script_path)
            finally:
                server.stop()
            print(f"{case:16} {name:20} {results[name][0]:>10.0f} req/s {results[name][1]}", file=sys.stderr)
        ours, our_problems = results["tern"]
        for name in peers:
            rate, problems = results[name]
            errors = "; ".join(x for x in (our_problems and f"tern: {our_problems}", problems and f"{name}: {problems}") if x)
            marker = f">= {target}" if name == target_peer else ""
            rows.append(f"| {case} | {name} | {ours:.0f} | {rate:.0f} | {ours / rate:.2f} | {marker} | {errors} |")
        if target_peer == "ceiling":
            rows.append(f"| {case} | ceiling | {ours:.0f} | {SLOW_CEILING} | {ours / SLOW_CEILING:.2f} | >= {target} | |")
            ratios.append((f"{case}, share of ceiling", ours / SLOW_CEILING, target))
        else:
            ratios.append((f"{case} vs {target_peer}", ours / results[target_peer][0], target))
        if case == "WSGI hello":
            ratios.append((f"{case} vs granian", ours / results["granian"][0], 2.0))
    return rows


CHART = ROOT / "bench" / "chart.svg"


def svg_chart(ratios, stamp, machine, command, args):
    """A horizontal bar per case: tern's ratio to the peer, with the target marked."""
    def esc(text):
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    label_width, bar_width, row_height, top = 260, 420, 34, 40
    scale_max = max(2.0, max(r for _, r, _ in ratios) * 1.1)
    height = top + row_height * len(ratios) + 90
    width = label_width + bar_width + 80
    x = lambda value: label_width + bar_width * min(value, scale_max) / scale_max
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="24" font-size="16" font-weight="bold">tern / peer (higher is better; | marks the target)</text>',
    ]
    for index, (case, ratio, target) in enumerate(ratios):
        y = top + index * row_height
        color = "#2f855a" if ratio >= target else "#c53030"
        parts += [
            f'<text x="10" y="{y + 20}">{esc(case)}</text>',
            f'<rect x="{label_width}" y="{y + 6}" width="{x(ratio) - label_width:.1f}" height="20" fill="{color}"/>',
            f'<line x1="{x(target):.1f}" y1="{y + 2}" x2="{x(target):.1f}" y2="{y + 30}" stroke="black" stroke-width="2"/>',
            f'<text x="{x(ratio) + 6:.1f}" y="{y + 21}">{ratio:.2f}</text>',
        ]
    base = top + row_height * len(ratios) + 20
    parts += [
        f'<line x1="{x(1.0):.1f}" y1="{top}" x2="{x(1.0):.1f}" y2="{base - 14}" stroke="#999" stroke-dasharray="4"/>',
        f'<text x="10" y="{base + 4}">{esc(stamp)}; {esc(machine)}</text>',
        f'<text x="10" y="{base + 24}">server on CPU {SERVER_CPU} (1 worker, defaults), wrk -t1 on CPU {CLIENT_CPU}; '
        f'{args.warmup} s warm-up, median of {args.runs} x {args.duration} s</text>',
        f'<text x="10" y="{base + 44}">command: {esc(command)}</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


STATIC_CASES = [("static 19 B", "/index.html", 64, 1.2), ("static 98 KB", "/style.css", 64, 1.0),
                ("static 954 KB", "/page.html", 64, 0.95)]


def static_rows(args, ratios):
    """tern against nginx on the three static files, plus memory per idle connection.

    Appends (case, ratio, target) to `ratios` for the chart and returns the table rows."""
    rows = []
    with tempfile.TemporaryDirectory() as work:
        os.chmod(work, 0o755)  # nginx's workers run as an unprivileged user and must read the site
        (Path(work) / "site").mkdir()
        site = make_site(Path(work) / "site")
        results = {}
        for name, argv_for in [
            ("tern", lambda port: [str(TERN), "serve", "-r", str(site), "--port", str(port)]),
            ("nginx", lambda port: nginx_config(work, site, port)),
        ]:
            port = free_port()
            server = Server(name, argv_for(port), port)
            try:
                for case, path, connections, _ in STATIC_CASES:
                    results[(case, name)] = measure(f"http://127.0.0.1:{port}{path}", connections, args)
                    print(f"{case:14} {name:6} {results[(case, name)][0]:>10.0f} req/s {results[(case, name)][1]}",
                          file=sys.stderr)
                results[("idle memory", name)] = idle_memory_per_connection(server, args.idle)
                print(f"idle memory    {name:6} {results[('idle memory', name)]:.0f} B/conn", file=sys.stderr)
            finally:
                server.stop()
    for case, _, _, target in STATIC_CASES:
        ours, peer = results[(case, "tern")], results[(case, "nginx")]
        errors = "; ".join(x for x in (ours[1] and f"tern: {ours[1]}", peer[1] and f"nginx: {peer[1]}") if x)
        rows.append(f"| {case} | nginx | {ours[0]:.0f} | {peer[0]:.0f} | {ours[0] / peer[0]:.2f} | >= {target} | {errors} |")
        ratios.append((f"{case} vs nginx", ours[0] / peer[0], target))
    ours, peer = results[("idle memory", "tern")], results[("idle memory", "nginx")]
    rows.append(f"| idle keep-alive memory (bytes/conn) | nginx | {ours:.0f} | {peer:.0f} | "
                f"{peer / ours:.2f} | >= 1.0 (nginx/tern) | |")
    ratios.append(("idle memory, nginx/tern", peer / ours, 1.0))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections for the memory case")
    parser.add_argument("--only", choices=["static", "wsgi", "lines"], help="run one group of cases")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    RESULTS.mkdir(parents=True, exist_ok=True)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ratios = []
    lines = [
        f"# tern benchmark, {stamp}",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}. "
        f"Server pinned to CPU {SERVER_CPU} (one worker), `wrk -t1` pinned to CPU {CLIENT_CPU}; "
        f"{args.warmup} s warm-up, median of {args.runs} runs of {args.duration} s.",
        "",
    ]
    if args.only in (None, "static"):
        lines += ["| case | peer | tern | peer | ratio | target | errors |", "|---|---|---:|---:|---:|---|---|"]
        lines += static_rows(args, ratios)
        lines.append("")
    if args.only in (None, "wsgi"):
        lines += ["| case | peer | tern | peer | ratio | target | errors |", "|---|---|---:|---:|---:|---|---|"]
        lines += measure_wsgi(args, ratios)
        lines.append("")
    if args.only in (None, "lines"):
        rate, p99, failed = line_echo(args)
        lines += [f"Line echo (`tern client -c 1000 --duration {args.duration}` against `tern echo`): "
                  f"{rate:.0f} messages/s, p99 {p99} ms, {failed} failed.", ""]
    report = "\n".join(lines)
    (RESULTS / "latest.md").write_text(report)
    print(report)
    if ratios:
        machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}"
        command = "bench/run.sh " + " ".join(sys.argv[1:])
        CHART.write_text(svg_chart(ratios, stamp, machine, command.strip(), args))
        print(f"chart: {CHART.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
