"""The ASGI cases of the benchmark: hello, a FastAPI JSON endpoint and a slow app (wrk), WebSocket
echo (`tern client --websocket`, pinned like wrk) and the memory of idle WebSocket sessions; tern
against Granian, uvicorn and Hypercorn (bench/peers.py), each with one worker. The apps are in
bench/asgi_apps.py."""

import base64
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import CLIENT_CPU, Server, free_port, measure, proc_status_kib
from peers import BENCH_DIR, asgi_peer, tern_wsgi

# (case, app, path, connections, peers, targets): a target is (peer, ratio), "best" for the best
# peer, or "ceiling" for a share of the slow app's ceiling.
SLOW_CEILING = 25_600  # 256 connections / 10 ms
HTTP_CASES = [
    ("ASGI hello", "asgi_apps:hello", "/", 64, ["granian asgi", "uvicorn", "hypercorn"],
     [("granian asgi", 1.3), ("uvicorn", 2.0)]),
    ("FastAPI JSON", "asgi_apps:fastapi_app", "/items/42?q=x", 64, ["granian asgi", "uvicorn"], [("best", 1.2)]),
    ("ASGI slow app", "asgi_apps:slow", "/", 256, ["granian asgi", "uvicorn"], [("ceiling", 0.95)]),
]
WS_PEERS = ["granian asgi", "uvicorn"]
WS_CONNECTIONS = 256
WS_MESSAGE = "m" * 64
WS_TARGET = 1.3


def log(message):
    print(message, file=sys.stderr, flush=True)


def asgi_server(ctx, name, target, port):
    """tern (its defaults) or ASGI peer `name` serving `target` from bench/."""
    argv = tern_wsgi(ctx.args.tern_python, target, port) if name == "tern" else asgi_peer(name, target, port)
    return Server(name, argv, port, cwd=str(BENCH_DIR))


def case_asgi(ctx):
    """tern and its ASGI peers on hello, a FastAPI endpoint and a slow app."""
    rows = ["| case | peer | peer settings | tern | peer | ratio | target | errors |",
            "|---|---|---|---:|---:|---:|---|---|"]
    from peers import SETTINGS
    for case, app, path, connections, peers, targets in HTTP_CASES:
        results = {}
        for name in ["tern", *ctx.peers(peers)]:
            port = free_port()
            server = asgi_server(ctx, name, app, port)
            try:
                results[name] = measure(f"http://127.0.0.1:{port}{path}", connections, ctx.args)
            finally:
                server.stop()
            log(f"{case:16} {name:20} {results[name].rate:>10.0f} req/s {results[name].problems}")
        ours = results["tern"]
        for name, peer in results.items():
            if name == "tern":
                continue
            errors = "; ".join(f"{n}: {results[n].problems}" for n in ("tern", name) if results[n].problems)
            rows.append(f"| {case} | {name} | {SETTINGS.get(name, '')} | {ours.rate:.0f} | {peer.rate:.0f} | "
                        f"{ours.rate / peer.rate:.2f} | | {errors} |")
        for target_peer, target in targets:
            if target_peer == "ceiling":
                rows.append(f"| {case} | ceiling | | {ours.rate:.0f} | {SLOW_CEILING} | "
                            f"{ours.rate / SLOW_CEILING:.2f} | >= {target} | |")
                ctx.ratios.append((f"{case}, share of ceiling", ours.rate / SLOW_CEILING, target))
                continue
            if target_peer == "best":
                peer_rates = {n: r.rate for n, r in results.items() if n != "tern"}
                if not peer_rates:
                    continue
                target_peer = max(peer_rates, key=peer_rates.get)
            if target_peer in results:
                ratio = ours.rate / results[target_peer].rate
                rows.append(f"| {case} | target | vs {target_peer} | | | {ratio:.2f} | >= {target} | |")
                ctx.ratios.append((f"{case} vs {target_peer}", ratio, target))
    return rows


def ws_client(ctx, port, seconds):
    """`tern client --websocket` on the client CPU: (messages per second, problems)."""
    out = subprocess.run(
        ["taskset", "-c", CLIENT_CPU, str(ctx.args.tern), "client", f"127.0.0.1:{port}",
         "-c", str(WS_CONNECTIONS), "--duration", str(seconds), "--websocket", "/ws",
         "--message", WS_MESSAGE, "--expect", WS_MESSAGE],
        capture_output=True, text=True, timeout=seconds + 120,
    ).stdout
    rate = float(re.search(r"throughput: ([\d.]+)", out).group(1))
    problems = []
    failed = re.search(r"messages: \d+ sent, \d+ answered, (\d+) failed", out)
    if failed and int(failed.group(1)):
        problems.append(f"{failed.group(1)} messages failed")
    connections = re.search(r"connections: \d+ opened, (\d+) failed", out)
    if connections and int(connections.group(1)):
        problems.append(f"{connections.group(1)} connections failed")
    return rate, ", ".join(problems)


def tree_rss_kib(pid):
    """Resident memory of a process and all its descendants, in KiB."""
    total = proc_status_kib(pid, "VmRSS")
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += tree_rss_kib(int(child))
    return total


def open_idle_websockets(port, count):
    """`count` WebSocket sessions opened to /ws and left idle (each answered 101)."""
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(f"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        sockets.append(s)
    for s in sockets:
        s.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("a WebSocket upgrade was closed unanswered")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"a WebSocket upgrade was refused: {head[:40]!r}")
    return sockets


def case_websocket(ctx):
    """WebSocket echo of 64 B text messages on 256 connections, and memory per idle session."""
    rows = ["| case | server | settings | value | errors |", "|---|---|---|---:|---|"]
    from peers import SETTINGS
    rates, memory = {}, {}
    idle = min(ctx.args.idle, 5_000)
    for name in ["tern", *ctx.peers(WS_PEERS)]:
        port = free_port()
        server = asgi_server(ctx, name, "asgi_apps:ws_echo", port)
        try:
            ws_client(ctx, port, ctx.args.warmup)
            runs = [ws_client(ctx, port, ctx.args.duration) for _ in range(ctx.args.runs)]
            rate = sorted(r for r, _ in runs)[len(runs) // 2]
            problems = "; ".join(p for _, p in runs if p)
            rates[name] = rate
            rows.append(f"| WebSocket echo, 64 B, c={WS_CONNECTIONS} (messages/s) | {name} | "
                        f"{'defaults' if name == 'tern' else SETTINGS.get(name, '')} | {rate:.0f} | {problems} |")
            log(f"ws echo        {name:20} {rate:>10.0f} msg/s {problems}")
            before = tree_rss_kib(server.process.pid)
            sockets = open_idle_websockets(port, idle)
            time.sleep(1)
            after = tree_rss_kib(server.process.pid)
            for s in sockets:
                s.close()
            memory[name] = (after - before) * 1024 / idle
            rows.append(f"| idle WebSocket session, {idle} open (bytes each, all processes) | {name} | | "
                        f"{memory[name]:.0f} | |")
            log(f"ws idle        {name:20} {memory[name]:>10.0f} bytes/session")
        finally:
            server.stop()
    peers = {n: r for n, r in rates.items() if n != "tern"}
    if peers:
        best = max(peers, key=peers.get)
        ctx.ratios.append((f"WebSocket echo vs {best}", rates["tern"] / peers[best], WS_TARGET))
        rows += ["", f"- WebSocket echo: tern/{best} = **{rates['tern'] / peers[best]:.2f}**, target >= {WS_TARGET}"]
    peers = {n: m for n, m in memory.items() if n != "tern"}
    if peers:
        best = min(peers, key=peers.get)
        ratio = peers[best] / memory["tern"] if memory["tern"] > 0 else float("inf")
        ctx.ratios.append((f"idle WebSocket memory, {best}/tern", ratio, 1.0))
        rows.append(f"- idle WebSocket memory: {best}/tern = **{ratio:.2f}**, target >= 1.0")
    return rows
