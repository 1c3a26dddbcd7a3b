#!/usr/bin/env python3
"""Start-to-first-200: time from exec to the first 200 answer on GET /health.

    startup.py --starts 5 --access-log true --logdir DIR --out FILE NAME=BINARY [NAME=BINARY ...]

Each start picks a free loopback port, execs the binary with
`--host=127.0.0.1 --port=PORT --access-log=BOOL` (stdout and stderr to DIR/NAME-startup.log),
then polls /health over a fresh connection every millisecond until it answers 200, and stops the
server with SIGTERM. The servers take turns (A B A B ...). Writes one `NAME<TAB>ms` line per
start to FILE.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_ok(port):
    """True if GET /health answered 200; False if nothing listens yet or it answered otherwise."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(REQUEST)
            head = s.recv(64)
            return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def one_start(binary, access_log, log, timeout=10.0):
    port = free_port()
    argv = [binary, "--host=127.0.0.1", f"--port={port}", f"--access-log={access_log}"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if health_ok(port):
                return (time.perf_counter() - started) * 1000.0
            if proc.poll() is not None:
                raise RuntimeError(f"{binary} exited with {proc.returncode} before answering")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{binary} did not answer /health within {timeout}s")
            time.sleep(0.001)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--access-log", default="true")
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("servers", nargs="+", metavar="NAME=BINARY")
    args = parser.parse_args()

    servers = [spec.split("=", 1) for spec in args.servers]
    with open(args.out, "w") as out:
        for _ in range(args.starts):
            for name, binary in servers:
                with open(os.path.join(args.logdir, f"{name}-startup.log"), "ab") as log:
                    ms = one_start(binary, args.access_log, log)
                out.write(f"{name}\t{ms:.2f}\n")
                out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
