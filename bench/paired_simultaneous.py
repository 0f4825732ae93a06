"""Two variants of a server measured at the same time: both pinned to CPU 0, each loaded by its
own `wrk -t1` on CPU 1, for several rounds. Whatever else the machine does slows both alike, so
the ratio of their CPU time per request (schedstat over each server's process tree, divided by
its wrk's request count) resolves differences of a percent where one-after-the-other pairs
(bench/paired_cpu.py) spread by ±30% on a shared machine. Two identical servers gave ratios of
0.995 to 1.001 (2026-12-04).

    python3 bench/paired_simultaneous.py '{"variants": {"default": ["target/release/tern", "serve", "-r", "SITE"],
                                          "format": [..., "--access-log-format", "..."]},
                                          "path": "/s.txt", "rounds": 8, "seconds": 3,
                                          "headers": ["User-Agent: bench/1.0"]}'

Exactly two variants; each gets `--port` and `--logfile` appended. Prints each round and the
median ratios (second variant / first)."""

import json, os, re, subprocess, sys, tempfile, time, socket, statistics, glob
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def wait_port(port):
    for _ in range(300):
        try: socket.create_connection(("127.0.0.1", port)).close(); return
        except OSError: time.sleep(0.05)
    raise SystemExit("server did not start")
def tree(pid):
    pids = [pid]
    for t in glob.glob(f"/proc/{pid}/task/*/children"):
        for c in open(t).read().split(): pids += tree(int(c))
    return pids
def cpu_ns(pid):
    total = 0
    for p in tree(pid):
        for s in glob.glob(f"/proc/{p}/task/*/schedstat"):
            try: total += int(open(s).read().split()[0])
            except OSError: pass
    return total
spec = json.loads(sys.argv[1])
names = list(spec["variants"]); rounds = spec.get("rounds", 10); secs = spec.get("seconds", 3)
conns = spec.get("conns", 32); path = spec["path"]; headers = spec.get("headers", [])
ratios = []; cpus = []
for r in range(rounds):
    procs = {}; ports = {}
    for n in names:
        ports[n] = free_port(); d = tempfile.mkdtemp()
        procs[n] = subprocess.Popen(["taskset", "-c", "0", *spec["variants"][n], "--port", str(ports[n]), "--logfile", os.path.join(d, "log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for n in names: wait_port(ports[n])
        def wrk(n, s):
            a = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{s}s"]
            for h in headers: a += ["-H", h]
            return subprocess.Popen(a + [f"http://127.0.0.1:{ports[n]}{path}"], stdout=subprocess.PIPE, text=True)
        for p in [wrk(n, 1) for n in names]: p.wait()
        before = {n: cpu_ns(procs[n].pid) for n in names}
        ws = {n: wrk(n, secs) for n in names}
        outs = {n: ws[n].communicate()[0] for n in names}
        after = {n: cpu_ns(procs[n].pid) for n in names}
        res = {}
        for n in names:
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", outs[n]).group(1))
            cnt = int(re.search(r"(\d+) requests in", outs[n]).group(1))
            if re.search(r"Non-2xx|Socket errors", outs[n]): print("WARN", outs[n])
            res[n] = (rate, (after[n] - before[n]) / cnt)
        a, b = names
        ratios.append(res[b][0] / res[a][0]); cpus.append(res[b][1] / res[a][1])
        print(r, {n: (round(res[n][0]), round(res[n][1])) for n in names}, f"rate {ratios[-1]:.3f} cpu {cpus[-1]:.3f}", flush=True)
    finally:
        for p in procs.values(): p.terminate(); p.wait()
print(f"{names[1]} / {names[0]}: rate ratio median {statistics.median(ratios):.3f} (min {min(ratios):.3f} max {max(ratios):.3f}); "
      f"CPU/request ratio median {statistics.median(cpus):.3f} (min {min(cpus):.3f} max {max(cpus):.3f})")
