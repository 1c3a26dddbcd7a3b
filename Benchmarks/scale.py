#!/usr/bin/env python3
"""Connection scale: N idle keep-alive connections held open while another client times /health.

    Benchmarks/scale.py --binary swift=PATH [--binary go=PATH] [--nginx] [--idle 10000]

For each server, one at a time: start it on 127.0.0.1 (access log off, so the figure is the
engine's), read its RSS, open N connections that each complete one `GET /health` and then stay
open and idle (keep-alive), read its RSS again, then time `GET /health` back to back on one
separate keep-alive connection for --probe seconds and report p50/p99/max, the RSS once more,
and the peak (VmHWM). The idle connections are held by this process (non-blocking sockets, a
selector); this process and the server each need N+ descriptors, so the soft RLIMIT_NOFILE is
raised to the hard limit here and for the servers.

Prints a Markdown table; a report, not a test.
"""

import argparse
import json
import os
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REQUEST = b"GET /health HTTP/1.1\r\nHost: scale\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def wait_up(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"scale.py: server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(REQUEST)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.02)
    raise SystemExit("scale.py: server did not answer /health")


def start(name, path, port, idle, workdir):
    if name == "nginx":
        prefix = os.path.join(workdir, "nginx")
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        with open(os.path.join(BENCH_DIR, "nginx", "nginx.conf.in")) as f:
            conf = f.read()
        conf = conf.replace("@PREFIX@", prefix).replace("@PORT@", str(port)).replace("@ACCESS_LOG@", "access_log off;")
        conf = conf.replace("@SSL@", "").replace("@SSL_CONFIG@", "")  # plain HTTP
        # One process must hold every connection: raise its per-worker cap past N.
        conf = conf.replace("worker_connections 4096;", f"worker_connections {idle + 1024};\n    ")
        conf = conf.replace("events {", f"worker_rlimit_nofile {idle + 2048};\nevents {{", 1)
        conf_path = os.path.join(prefix, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        cmd = ["nginx", "-p", prefix, "-c", conf_path]
    elif name == "go":
        cmd = [path, "--host=127.0.0.1", f"--port={port}", "--access-log=false"]
    else:
        cmd = [path, "--host=127.0.0.1", f"--port={port}", "--access-log=false", f"--max-connections={idle + 1024}"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, f"{name}.stderr"), "w"))


def open_idle(port, count):
    """Opens `count` connections, each completing one request, and returns them (kept open)."""
    sel = selectors.DefaultSelector()
    conns = []
    pending = 0
    batch = 500
    for start in range(0, count, batch):
        group = []
        for _ in range(min(batch, count - start)):
            s = socket.socket()
            s.setblocking(True)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            s.send(REQUEST)
            sel.register(s, selectors.EVENT_READ)
            group.append(s)
            pending += 1
        # Read each answer before the next batch, so the backlog stays short.
        deadline = time.time() + 30
        while pending and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                data = key.fileobj.recv(4096)
                if not data:
                    raise SystemExit("scale.py: an idle connection was closed by the server")
                sel.unregister(key.fileobj)
                pending -= 1
        if pending:
            raise SystemExit(f"scale.py: {pending} connections got no answer")
        conns.extend(group)
    return conns


def probe(port, seconds):
    latencies = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        end = time.time() + seconds
        while time.time() < end:
            t0 = time.perf_counter()
            s.sendall(REQUEST)
            got = b""
            while b"\r\n\r\n" not in got or not got.endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    raise SystemExit("scale.py: probe connection closed")
                got += chunk
            latencies.append(time.perf_counter() - t0)
    latencies.sort()
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", action="append", default=[], help="name=path (swift, go)")
    parser.add_argument("--nginx", action="store_true", help="also run nginx (one process)")
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--probe", type=float, default=5.0, help="seconds of /health timing")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.idle + 1024:
        raise SystemExit(f"scale.py: the descriptor hard limit {hard} is below {args.idle + 1024}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    servers = [tuple(b.split("=", 1)) for b in args.binary]
    if args.nginx:
        if not shutil.which("nginx"):
            raise SystemExit("scale.py: nginx is not installed")
        servers.append(("nginx", "nginx"))
    rows = []
    workdir = tempfile.mkdtemp(prefix="scale-")
    for name, path in servers:
        port = free_port()
        proc = start(name, path, port, args.idle, workdir)
        try:
            wait_up(port, proc)
            time.sleep(0.3)
            rss_idle = rss_kib(proc.pid)
            t0 = time.time()
            conns = open_idle(port, args.idle)
            opened_s = time.time() - t0
            time.sleep(0.5)
            rss_held = rss_kib(proc.pid)
            lat = probe(port, args.probe)
            rss_after = rss_kib(proc.pid)
            rss_peak = rss_kib(proc.pid, "VmHWM")
            rows.append({
                "server": name, "idle_conns": len(conns), "open_s": opened_s,
                "rss_idle_mib": rss_idle / 1024, "rss_held_mib": rss_held / 1024, "rss_after_mib": rss_after / 1024,
                "rss_peak_mib": rss_peak / 1024,
                "kib_per_conn": (rss_held - rss_idle) / max(1, len(conns)),
                "requests": len(lat), "p50_ms": statistics.median(lat) * 1e3,
                "p99_ms": lat[min(len(lat) - 1, len(lat) * 99 // 100)] * 1e3, "max_ms": lat[-1] * 1e3,
            })
            for s in conns:
                s.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"### {args.idle:,} idle keep-alive connections held while one client times /health ({args.probe:g} s)\n")
    print("| server | connections held | RSS before | RSS holding them | KiB per connection | RSS after the probe "
          "| peak RSS | /health requests | p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['server']} | {r['idle_conns']:,} | {r['rss_idle_mib']:.1f} MiB | {r['rss_held_mib']:.1f} MiB | "
              f"{r['kib_per_conn']:.1f} | {r['rss_after_mib']:.1f} MiB | {r['rss_peak_mib']:.1f} MiB | {r['requests']:,} | "
              f"{r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['max_ms']:.2f} ms |")
    print()
    print("RSS holding them: 0.5 s after the last connection opened. RSS after the probe: with them "
          "still held. Peak RSS: the process's high-water mark (VmHWM) over the whole run.")
    print()
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
