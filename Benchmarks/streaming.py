#!/usr/bin/env python3
"""Streaming: a 1 GiB body produced on the fly, and 1,000 Server-Sent Events streams held open.

    streaming.py --service BIN --go BIN [--nginx] [--rounds 5] [--gib 1] [--streams 1000]
                 [--out FILE]

1. *Download*: each server in turn (A B C A B C ...) sends GIB GiB over loopback to
   `curl -o /dev/null`: the service's `GET /download?bytes=N` (chunked, written 64 KiB at a
   time), Go's `GET /download?bytes=N` (`io.CopyN` from a generator, chunked), and nginx (one
   process, `sendfile on`) serving a file of that size from the page cache. Reported: the
   median throughput and the server's CPU time per GiB (utime + stime from /proc, before and
   after), plus the spread of the throughput.
2. *Streams*: STREAMS connections each open `GET /events?count=10000&interval=1000` (one
   event a second) on the service and on Go; once all have their first event, the script
   waits 3 s, checks that every stream got further events, and reads the server's VmRSS.
   Reported: RSS before the streams, with them, and per stream.

Servers run with access logs off. A report, not a test: nothing passes or fails on a number.
"""

import argparse
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

GIB = 1 << 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_for_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


class Server:
    def __init__(self, name, argv, port, cwd=None):
        self.name, self.port = name, port
        self.log = open(os.path.join(tempfile.gettempdir(), f"streaming-{name}.log"), "w")
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)
        wait_for_port(port)

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def start_servers(args, workdir):
    servers = []
    port = free_port()
    servers.append(Server("swift", [args.service, "--host=127.0.0.1", f"--port={port}", "--access-log=false"], port))
    port = free_port()
    servers.append(Server("go", [args.go, "-host=127.0.0.1", f"-port={port}", "-access-log=false"], port))
    if args.nginx:
        port = free_port()
        root = os.path.join(workdir, "www")
        os.makedirs(root, exist_ok=True)
        os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)
        with open(os.path.join(root, "download"), "wb") as f:
            block = b"x" * (1 << 20)
            for _ in range(args.gib * 1024):
                f.write(block)
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {workdir}/tmp;
    proxy_temp_path {workdir}/tmp;
    fastcgi_temp_path {workdir}/tmp;
    uwsgi_temp_path {workdir}/tmp;
    scgi_temp_path {workdir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        default_type application/octet-stream;
    }}
}}
""")
        servers.append(Server("nginx", ["nginx", "-p", workdir, "-c", conf], port))
    return servers


def download(server, nbytes):
    """One download with curl; returns (seconds, server CPU seconds)."""
    url = f"http://127.0.0.1:{server.port}/download"
    if server.name != "nginx":
        url += f"?bytes={nbytes}"
    before = cpu_seconds(server.pid)
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
        check=True, capture_output=True, text=True).stdout.split()
    cpu = cpu_seconds(server.pid) - before
    size, seconds = int(out[0]), float(out[1])
    if size != nbytes:
        raise RuntimeError(f"{server.name}: {size} bytes, expected {nbytes}")
    return seconds, cpu


def hold_streams(server, count):
    """Opens `count` event streams; returns (RSS before, RSS with them, events per stream)."""
    time.sleep(0.3)
    before = rss_bytes(server.pid)
    request = b"GET /events?count=10000&interval=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sockets = []
    received = {}
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(request)
        sockets.append(s)
        received[s] = b""

    # poll, not select: select cannot watch descriptors past 1023.
    poller = select.poll()
    by_fd = {s.fileno(): s for s in sockets}
    for s in sockets:
        poller.register(s, select.POLLIN)

    def pump(wait):
        deadline = time.time() + wait
        while (left := deadline - time.time()) > 0:
            for fd, _ in poller.poll(min(left, 0.2) * 1000):
                data = by_fd[fd].recv(65536)
                if not data:
                    raise RuntimeError(f"{server.name}: a stream closed")
                received[by_fd[fd]] += data

    # Every stream's head and first event, then 3 s of events.
    deadline = time.time() + 30
    while any(received[s].count(b"data:") < 1 for s in sockets):
        if time.time() > deadline:
            raise RuntimeError(f"{server.name}: streams did not all start")
        pump(0.2)
    pump(3)
    during = rss_bytes(server.pid)
    events = statistics.median(received[s].count(b"data:") for s in sockets)
    for s in sockets:
        s.close()
    return before, during, events


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", required=True)
    parser.add_argument("--go", required=True)
    parser.add_argument("--nginx", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gib", type=int, default=1)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--out")
    args = parser.parse_args()

    names = {"swift": "Swift service", "go": "Go net/http", "nginx": "nginx, 1 process (sendfile)"}
    lines = []
    with tempfile.TemporaryDirectory() as workdir:
        servers = start_servers(args, workdir)
        try:
            nbytes = args.gib * GIB
            for server in servers:  # warm-up: page cache, first-touch of buffers
                download(server, nbytes)
            results = {s.name: [] for s in servers}
            for round_ in range(args.rounds):
                for server in servers:
                    results[server.name].append(download(server, nbytes))
                    print(f"round {round_ + 1}/{args.rounds} {server.name}: "
                          f"{nbytes / results[server.name][-1][0] / 1e6:.0f} MB/s", file=sys.stderr)
            lines += [f"### {args.gib} GiB streamed over loopback to curl (median of {args.rounds} rounds)", "",
                      "| server | throughput | spread | server CPU per GiB |", "|---|---:|---:|---:|"]
            for server in servers:
                rates = [nbytes / t / 1e6 for t, _ in results[server.name]]
                cpu = statistics.median(c / args.gib for _, c in results[server.name])
                spread = (max(rates) - min(rates)) / statistics.median(rates) * 100
                lines.append(f"| {names[server.name]} | {statistics.median(rates):,.0f} MB/s | {spread:.0f}% | "
                             f"{cpu * 1000:,.0f} ms |")
            lines += ["", f"### {args.streams} Server-Sent Events streams held open (one event a second)", "",
                      "| server | RSS before | RSS with the streams | per stream | events per stream in 3 s |",
                      "|---|---:|---:|---:|---:|"]
            for server in servers:
                if server.name == "nginx":
                    continue
                before, during, events = hold_streams(server, args.streams)
                lines.append(f"| {names[server.name]} | {before / 2**20:.1f} MiB | {during / 2**20:.1f} MiB | "
                             f"{(during - before) / args.streams / 1024:.1f} KiB | {events:.0f} |")
        finally:
            for server in servers:
                server.stop()
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
