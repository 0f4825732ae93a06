"""Paired wrk runs of variants of one server command, reporting the rate and the server's CPU time
per request (schedstat over its process tree), with the variants in alternating order.

    python3 bench/paired_cpu.py '{"variants": {"default": ["target/release/tern", "serve", "-r", "SITE"],
                                 "format": [..., "--access-log-format", "..."]},
                                 "path": "/s.txt", "rounds": 40, "seconds": 1,
                                 "headers": ["User-Agent: bench/1.0", "Referer: http://x/"]}'

Each variant gets `--port` and `--logfile` appended; the first variant is the base of the ratios."""
import os, re, subprocess, sys, tempfile, time, socket, statistics, json, glob

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port):
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port)).close(); return
        except OSError: time.sleep(0.05)
    raise SystemExit("server did not start")

def tree(pid):
    pids = [pid]
    for t in glob.glob(f"/proc/{pid}/task/*/children"):
        for c in open(t).read().split():
            pids += tree(int(c))
    return pids

def cpu_ns(pid):
    total = 0
    for p in tree(pid):
        for s in glob.glob(f"/proc/{p}/task/*/schedstat"):
            try: total += int(open(s).read().split()[0])
            except OSError: pass
    return total

def wrk(url, seconds, headers, conns):
    args = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s"]
    for h in headers: args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    n = int(re.search(r"(\d+) requests in", out).group(1))
    if re.search(r"Non-2xx|Socket errors", out): print("WARN", out)
    return rate, n

def run(variants, url_path, rounds, seconds, headers, conns):
    rates = {k: [] for k in variants}; cpus = {k: [] for k in variants}
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            port = free_port(); logdir = tempfile.mkdtemp()
            p = subprocess.Popen(["taskset", "-c", "0", *variants[name], "--port", str(port), "--logfile", os.path.join(logdir, "log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(port); url = f"http://127.0.0.1:{port}{url_path}"
                wrk(url, 1, headers, conns)
                before = cpu_ns(p.pid)
                rate, n = wrk(url, seconds, headers, conns)
                after = cpu_ns(p.pid)
                rates[name].append(rate); cpus[name].append((after - before) / n)
            finally:
                p.terminate(); p.wait()
        print(r, {k: (round(rates[k][-1]), round(cpus[k][-1])) for k in variants}, flush=True)
    base = list(variants)[0]
    for name in variants:
        rr = [b / a for a, b in zip(rates[base], rates[name])]
        cr = [b / a for a, b in zip(cpus[base], cpus[name])]
        print(f"{name}: rate median {statistics.median(rates[name]):.0f} (paired ratio {statistics.median(rr):.3f}); "
              f"CPU/request median {statistics.median(cpus[name]):.0f} ns (paired ratio {statistics.median(cr):.3f}, min {min(cr):.3f} max {max(cr):.3f})")

if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    run(spec["variants"], spec["path"], spec.get("rounds", 6), spec.get("seconds", 4), spec.get("headers", []), spec.get("conns", 64))
