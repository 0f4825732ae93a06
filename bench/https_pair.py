"""HTTPS: tern against nginx with TLS, paired wrk runs (server on CPU 0, wrk on CPU 1), for static
19 B / 98 KB / 954 KB with keep-alive and a new connection per request.

    python3 bench/https_pair.py TERN_BINARY PKI_DIR SITE_DIR WORK_DIR [ROUNDS]

PKI_DIR holds server.pem and server-key.pem; SITE_DIR holds s.txt (19 B), m.bin (98,000 B) and
l.bin (954,000 B); WORK_DIR receives nginx's config and logs."""
import os, re, subprocess, sys, time, socket, statistics
tern, pki, site, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def wait_port(port):
    for _ in range(300):
        try: socket.create_connection(("127.0.0.1", port)).close(); return
        except OSError: time.sleep(0.05)
    raise SystemExit("no server")
def nginx(port):
    d = os.path.join(work, f"nginx{port}"); os.makedirs(d, exist_ok=True)
    open(f"{d}/nginx.conf", "w").write(f"""
worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
worker_rlimit_nofile 30000; events {{ worker_connections 20000; }}
http {{ include /etc/nginx/mime.types; access_log off; sendfile on; open_file_cache max=1000 inactive=20s;
 keepalive_timeout 300s; keepalive_requests 1000000; client_body_temp_path {d}/body;
 ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;
 server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {pki}/server.pem; ssl_certificate_key {pki}/server-key.pem; root {site}; }} }}
""")
    return ["nginx", "-c", f"{d}/nginx.conf", "-p", d]
def tern_argv(port):
    return [tern, "serve", "-r", site, "--port", str(port), "--certfile", f"{pki}/server.pem", "--keyfile", f"{pki}/server-key.pem", "--logfile", os.path.join(work, "tern.log")]
def wrk(url, secs, extra=()):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{secs}s", *extra, url], capture_output=True, text=True).stdout
    if re.search(r"Non-2xx|Socket errors", out): print("WARN", out.strip().splitlines()[-3:])
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
cases = [("19 B", "/s.txt", ()), ("98 KB", "/m.bin", ()), ("954 KB", "/l.bin", ()), ("19 B, Connection: close", "/s.txt", ("-H", "Connection: close"))]
servers = {"tern": tern_argv, "nginx": nginx}
res = {(c[0], s): [] for c in cases for s in servers}
for r in range(rounds):
    for name in (list(servers) if r % 2 == 0 else list(reversed(servers))):
        port = free_port()
        p = subprocess.Popen(["taskset", "-c", "0", *servers[name](port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            for label, path, extra in cases:
                url = f"https://127.0.0.1:{port}{path}"
                wrk(url, 1, extra)
                res[(label, name)].append(wrk(url, 4, extra))
        finally:
            p.terminate(); p.wait()
    print("round", r, {k: round(v[-1]) for k, v in res.items()}, flush=True)
for label, _, _ in cases:
    t = res[(label, "tern")]; n = res[(label, "nginx")]
    ratios = [a / b for a, b in zip(t, n)]
    print(f"{label}: tern {statistics.median(t):.0f} req/s, nginx {statistics.median(n):.0f} req/s, ratio median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
