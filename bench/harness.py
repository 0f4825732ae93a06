"""The benchmark's plumbing: servers started pinned to the server CPU and stopped by their PID, and
the load generators (wrk, oha) run pinned to the client CPU with their output parsed.

Every measurement here returns the problems it saw (non-2xx answers, socket errors, timeouts) as
text, so the report can show each error next to the number it belongs to.
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SERVER_CPU = "0"
CLIENT_CPU = "1"
# wrk's own default (2 s) would drop the slowest requests from the latency figures as "timeouts";
# with 10 s they are measured, and a request slower than that is still reported as an error.
WRK_TIMEOUT = "10s"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process started pinned to the server CPU, its output kept in a log file, stopped by PID."""

    def __init__(self, name, argv, port, cwd=None, env=None, timeout=30.0):
        self.name, self.port = name, port
        self.log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *argv],
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_port(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_port(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name}: nothing listening on {self.port} after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines=30):
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def worker_pid(self):
        """The process that serves: the first child of the master (tern, nginx, gunicorn, Granian),
        else the process itself (bjoern, waitress, a single-process uWSGI)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0]) if children else self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


def proc_status_kib(pid, field):
    """A memory figure of /proc/PID/status in KiB: VmRSS (resident now) or VmHWM (peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Load:
    """One load-generator run: request rate, latency percentiles and mean in ms (None when not
    measured), the problems it saw, and how many requests it completed."""

    rate: float
    p99: float | None = None
    p999: float | None = None
    problems: str = ""
    requests: int = 0
    mean: float | None = None

    def busy_connections(self):
        """Little's law: how many of a closed loop's connections were being served at a time. Near
        the connection count when the server answers them all; far below it when it serves a few
        and leaves the rest waiting, whose requests then never reach the latency figures."""
        return None if self.mean is None else self.rate * self.mean / 1000


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out):
    """Reads rate, p99 and errors from `wrk --latency` output."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p99_match = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    p99 = float(p99_match.group(1)) * UNIT_MS[p99_match.group(2)] if p99_match else None
    mean_match = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s|m)\s", out, re.M)
    mean = float(mean_match.group(1)) * UNIT_MS[mean_match.group(2)] if mean_match else None
    problems = []
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        problems.append(f"{non2xx.group(1)} non-2xx")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and any(int(n) for n in errors.groups()):
        problems.append("socket errors c/r/w/t " + "/".join(errors.groups()))
    return Load(rate, p99, None, ", ".join(problems), requests, mean)


def wrk_argv(url, connections, seconds, script=None, headers=()):
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            "--timeout", WRK_TIMEOUT]
    for header in headers:
        argv += ["-H", header]
    if script:
        argv += ["-s", script]
    return argv + [url]


def wrk(url, connections, seconds, script=None, headers=()):
    out = subprocess.run(wrk_argv(url, connections, seconds, script, headers), capture_output=True, text=True,
                         check=True).stdout
    return parse_wrk(out)


def wrk_together(loads, seconds):
    """Runs several wrk at once, all pinned to the client CPU: `loads` is a list of
    (url, connections, script, headers); returns one Load per entry, in order."""
    processes = [subprocess.Popen(wrk_argv(url, c, seconds, script, headers), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for url, c, script, headers in loads]
    outputs = [process.communicate(timeout=seconds + 60) for process in processes]  # all of them, then judge
    for process, (_, err) in zip(processes, outputs):
        if process.returncode != 0:
            raise RuntimeError(f"wrk failed ({process.returncode}): {err}")
    return [parse_wrk(out) for out, _ in outputs]


def median_load(runs):
    """The median of each figure over the runs, and every run's problems."""
    def median_of(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    return Load(
        rate=statistics.median(r.rate for r in runs),
        p99=median_of(r.p99 for r in runs),
        p999=median_of(r.p999 for r in runs),
        problems="; ".join(r.problems for r in runs if r.problems),
        requests=sum(r.requests for r in runs),
        mean=median_of(r.mean for r in runs),
    )


def measure(url, connections, args, script=None, headers=()):
    """Warm-up, then `args.runs` measured wrk runs; the median of each figure."""
    wrk(url, connections, args.warmup, script, headers)
    return median_load([wrk(url, connections, args.duration, script, headers) for _ in range(args.runs)])


def oha_path():
    """oha from PATH, or where `cargo install` puts it."""
    found = shutil.which("oha")
    if found:
        return found
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin" / "oha"
    return str(cargo_bin) if cargo_bin.exists() else None


def parse_oha(text):
    """Reads rate, p99, p99.9 (ms) and errors from oha's JSON output."""
    data = json.loads(text)
    percentiles = data["latencyPercentiles"]
    problems = []
    statuses = data.get("statusCodeDistribution", {})
    bad = sum(count for status, count in statuses.items() if not status.startswith("2"))
    if bad:
        problems.append(f"{bad} non-2xx")
    errors = data.get("errorDistribution", {})
    if errors:
        problems.append("errors " + ", ".join(f"{kind}: {count}" for kind, count in errors.items()))

    def ms(key):
        value = percentiles.get(key)
        return None if value is None else value * 1000

    return Load(
        rate=data["summary"]["requestsPerSec"],
        p99=ms("p99"),
        p999=ms("p99.9"),
        problems=", ".join(problems),
        requests=sum(statuses.values()),
    )


def oha(url, connections, seconds=None, rate=None, requests=None):
    """One oha run pinned to the client CPU: for `seconds` at a fixed `rate` (latency corrected for
    coordinated omission: measured from when each request was due, not from when it was sent), or
    `requests` requests as fast as the server answers. Requests still running at the end of a timed
    run are waited for, not counted as errors."""
    argv = ["taskset", "-c", CLIENT_CPU, oha_path(), "--no-tui", "--output-format", "json", "-c", str(connections)]
    if requests is not None:
        argv += ["-n", str(requests)]
    else:
        argv += ["-z", f"{seconds}s", "--wait-ongoing-requests-after-deadline"]
    if rate is not None:
        argv += ["-q", f"{rate:.0f}", "--latency-correction"]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    return parse_oha(out)
