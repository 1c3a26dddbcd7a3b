#!/usr/bin/env python3
"""Per-connection memory: RSS per client connection in each state, plain HTTP and HTTPS.

    Benchmarks/conn-memory.py --binary .build-tls/release/service           # plain and TLS
    Benchmarks/conn-memory.py --binary PATH --go Benchmarks/.bin/benchref   # Go beside it
    Benchmarks/conn-memory.py --binary PATH --connections 2000 --out FILE.md   # default 3,000

The binary must be built with the TLS trait for the TLS rows (`swift build -c release
--traits TLS`); without it only the plain rows run. Needs python3 and the openssl command.

For each protocol (plain, TLS) and each state below, a server is started afresh with
EVENT_LOOPS=1, access log off, timeouts long enough that nothing expires while measured
(read-header 120 s) and a connection cap above N. It serves 20 requests on a connection that
then closes, so the code paths are paged in, and its VmRSS is read 0.5 s later (*before*).
This process (a separate one, as a real client) then opens N connections in the state, waits
until the server settles (1.5 s: idle connections park 50 to 100 ms after their answer), and
reads VmRSS (*holding*): (holding - before) / N is the cost of one connection in that state.
Then every client connection is closed and VmRSS is sampled every 0.1 s for --settle
seconds: *after* is the last sample, *back within 10 MiB* the first moment it was within
10 MiB of *before* (the server's heap trim after closes), counted from the close. A service
that cancels a handler when its client leaves (one with --max-delay) frees an in-flight
connection at the close; with an older binary the handler runs on for its 60 s, so for that
state the sampling goes on until --settle seconds after they are over, and the time counts
from the close too.

States:
- silent: TCP connected, no byte sent (for TLS: no ClientHello yet);
- partial header: a request line and 16,000 bytes of one header field that never ends (under
  the 16 KiB --max-header-bytes; for TLS, after a completed handshake);
- parked: idle after one request answered (keep-alive);
- in flight: `GET /delay?ms=60000` sent, the handler sleeping (the N requests are opened in
  well under 60 s; a run that takes longer reports wrong figures and says so). Not for Go:
  its reference server has no /delay.

RSS counts what the server process touched, not the kernel's socket buffers. A report, not a
test: nothing passes or fails on a number.
"""

import argparse
import datetime
import os
import platform
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
MIB = 1024 * 1024
STATES = ["silent", "partial header", "parked", "in flight"]
REQUEST = b"GET /health HTTP/1.1\r\nHost: mem\r\n\r\n"
PARTIAL = b"GET /health HTTP/1.1\r\nHost: mem\r\nX-Pad: " + b"a" * 16000
DELAY = b"GET /delay?ms=60000 HTTP/1.1\r\nHost: mem\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def make_certificate(workdir):
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=conn-memory"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class Server:
    def __init__(self, kind, binary, port, connections, tls, workdir):
        self.tls = tls is not None
        if kind == "go":
            cmd = [binary, "-host=127.0.0.1", f"-port={port}", "-access-log=false"]
            if tls:
                cmd += [f"-tls-cert-file={tls[0]}", f"-tls-key-file={tls[1]}"]
            env = dict(os.environ, GOMAXPROCS="1")
        else:
            cmd = [binary, "--host=127.0.0.1", f"--port={port}", "--access-log=false", "--metrics=false",
                   f"--max-connections={connections + 1024}", "--read-header-timeout=120s",
                   "--idle-timeout=300s", "--event-loops=1"]
            if tls:
                cmd += [f"--tls-cert-file={tls[0]}", f"--tls-key-file={tls[1]}"]
            env = dict(os.environ, EVENT_LOOPS="1")
        if kind != "go" and has_max_delay(binary):
            cmd.append("--max-delay=60s")  # /delay?ms=60000 for the in-flight state
        self.cancels_on_hangup = kind != "go" and has_max_delay(binary)
        self.port = port
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "stderr"), "a"),
                                     env=env)
        self.context = None
        if self.tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE

    def connect(self, handshake=True):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        if self.tls and handshake:
            s = self.context.wrap_socket(s)
        return s

    def wait_up(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"conn-memory.py: server exited with {self.proc.returncode}")
            try:
                with self.connect() as s:
                    s.sendall(REQUEST)
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("conn-memory.py: the server did not answer /health")

    def warm_up(self):
        with self.connect() as s:
            for _ in range(20):
                s.sendall(REQUEST)
                read_response(s)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def has_max_delay(binary):
    """Whether the service binary has --max-delay (and so cancels a handler whose client left)."""
    result = subprocess.run([binary, "--help"], capture_output=True, text=True)
    return "--max-delay" in result.stdout + result.stderr


def read_response(s):
    got = b""
    while not got.endswith(b"}"):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("conn-memory.py: a connection was closed by the server")
        got += chunk


def open_state(server, state, count):
    conns = []
    for _ in range(count):
        if state == "silent":
            s = server.connect(handshake=False)
        else:
            s = server.connect()
            if state == "partial header":
                s.sendall(PARTIAL)
            elif state == "parked":
                s.sendall(REQUEST)
                read_response(s)
            else:
                s.sendall(DELAY)
        conns.append(s)
    return conns


def measure(kind, binary, tls, state, count, settle, workdir):
    server = Server(kind, binary, free_port(), count, tls, workdir)
    try:
        server.wait_up()
        server.warm_up()
        time.sleep(0.5)
        before = rss_kib(server.proc.pid)
        started = time.time()
        conns = open_state(server, state, count)
        opened = time.time() - started
        time.sleep(1.5)
        holding = rss_kib(server.proc.pid)
        if server.proc.poll() is not None:
            raise SystemExit(f"conn-memory.py: the server exited while holding {state} connections")
        for s in conns:
            s.close()
        closed = time.time()
        # Without cancellation, a handler in flight runs on after its client left (until its 60 s
        # sleep ends), and its connection is closed only then: wait for the last one's too.
        lingers = state == "in flight" and not server.cancels_on_hangup
        until = max(closed, started + opened + 60) + settle if lingers else closed + settle
        back = None
        after = holding
        while time.time() < until:
            time.sleep(0.1)
            after = rss_kib(server.proc.pid)
            if back is None and after - before <= 10 * 1024:
                back = time.time() - closed
        warning = ""
        if state == "in flight" and opened + 1.5 > 55:
            warning = "opening took too long: some handlers had finished"
        return {
            "server": kind, "tls": tls is not None, "state": state, "connections": count,
            "before_kib": before, "holding_kib": holding, "after_kib": after,
            "per_conn_kib": (holding - before) / count, "back_s": back, "open_s": opened, "warning": warning,
        }
    finally:
        server.stop()


def table(rows, connections):
    lines = [
        f"| state | protocol | server | KiB per connection | {connections:,} connections | RSS before | "
        "RSS after they left | back within 10 MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        back = f"{r['back_s']:.1f} s" if r["back_s"] is not None else "no"
        lines.append(
            f"| {r['state']} | {'TLS' if r['tls'] else 'plain'} | {r['server']} | {r['per_conn_kib']:.1f} | "
            f"{(r['holding_kib'] - r['before_kib']) / 1024:.1f} MiB | {r['before_kib'] / 1024:.1f} MiB | "
            f"{r['after_kib'] / 1024:.1f} MiB | {back} |" + (f" {r['warning']}" if r["warning"] else ""))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build-tls/release/service"))
    parser.add_argument("--go", help="also measure this Go reference server (Benchmarks/go)")
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--settle", type=float, default=4.0, help="seconds of RSS sampling after the clients leave")
    parser.add_argument("--states", default=",".join(STATES), help="comma-separated subset of: " + ", ".join(STATES))
    parser.add_argument("--protocols", default="plain,tls")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.connections + 512:
        raise SystemExit(f"conn-memory.py: the descriptor hard limit {hard} is below {args.connections + 512}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not shutil.which("openssl"):
        raise SystemExit("conn-memory.py: needs the openssl command")

    workdir = tempfile.mkdtemp(prefix="conn-memory-")
    cert = make_certificate(workdir)
    states = [s.strip() for s in args.states.split(",")]
    protocols = [p.strip() for p in args.protocols.split(",")]
    servers = [("service", args.binary)] + ([("go", args.go)] if args.go else [])
    rows = []
    for state in states:
        if state not in STATES:
            raise SystemExit(f"conn-memory.py: unknown state {state!r}")
        for protocol in protocols:
            for kind, binary in servers:
                if kind == "go" and state == "in flight":
                    continue  # the Go reference server has no /delay
                row = measure(kind, binary, cert if protocol == "tls" else None, state, args.connections,
                              args.settle, workdir)
                rows.append(row)
                print(f"{state:15} {protocol:5} {kind:8} {row['per_conn_kib']:6.1f} KiB/conn  "
                      f"after {row['after_kib'] / 1024:.1f} MiB (before {row['before_kib'] / 1024:.1f})", flush=True)
    revision = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    header = (f"Per-connection memory, {datetime.date.today().isoformat()}, commit {revision or '?'}, "
              f"{platform.node()} ({os.cpu_count()} CPUs, Linux {platform.release()}), EVENT_LOOPS=1, "
              f"{args.connections:,} connections per state, `{os.path.relpath(args.binary, ROOT)}`.")
    text = header + "\n\n" + table(rows, args.connections) + "\n"
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
