"""Server CPU time per new TLS connection, tern against nginx: each server pinned to CPU 0 in turn,
`wrk -t1 -c64 -H 'Connection: close'` on CPU 1 for 5 s after a 2 s warm-up; the server's CPU from
schedstat over its process tree, wrk's from getrusage. Run from the repository root after
`cargo build --release`:

    python3 bench/https_handshake_cpu.py
"""
import glob, os, re, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from https_case import certificate
from peers import nginx_config
from pathlib import Path
work = Path(tempfile.mkdtemp()); os.chmod(work, 0o755)
cert, key = certificate(work)
site = work / "site"; site.mkdir(); (site / "index.html").write_bytes(b"Hello, benchmark!!\n")
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def tree(pid):
    pids = [pid]
    for t in glob.glob(f"/proc/{pid}/task/*/children"):
        for c in open(t).read().split(): pids += tree(int(c))
    return pids
def cpu(pid):
    return sum(int(open(s).read().split()[0]) for p in tree(pid) for s in glob.glob(f"/proc/{p}/task/*/schedstat"))
for name in ["tern", "nginx"]:
    port = free_port()
    argv = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "tern"), "serve", "-r", str(site), "--port", str(port), "--certfile", str(cert), "--keyfile", str(key), "--no-access-log"] if name == "tern" else nginx_config(work, site, port, tls=(cert, key))
    p = subprocess.Popen(["taskset", "-c", "0", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    url = f"https://127.0.0.1:{port}/index.html"
    subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d2s", "-H", "Connection: close", url], capture_output=True)
    import resource
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0 = cpu(p.pid); t0 = time.time()
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d5s", "-H", "Connection: close", url], capture_output=True, text=True).stdout
    c1 = cpu(p.pid); t1 = time.time()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    n = int(re.search(r"(\d+) requests in", out).group(1)); rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    print(f"{name}: {rate:.0f} req/s, server CPU {(c1-c0)/n/1000:.0f} us per connection, server busy {(c1-c0)/1e9/(t1-t0):.0%} of a core, wrk busy {wrk_cpu/(t1-t0):.0%}")
    p.terminate(); p.wait()
