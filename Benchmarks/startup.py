#!/usr/bin/env python3
"""Start-up and idle footprint: start to first 200, idle RSS, SIGTERM to exit.

    startup.py --starts 5 --access-log true --logdir DIR --out FILE [--footprint FILE2] NAME=BINARY [...]
    startup.py --report --out FILE --footprint FILE2

Each start picks a free loopback port and execs the binary with
`--host=127.0.0.1 --port=PORT --access-log=BOOL` (stdout and stderr to DIR/NAME-startup.log).
The servers take turns (A B A B ...). Every start of every server does the same two runs:

1. *Served*: polls /health over a fresh connection every millisecond until it answers 200 (start
   to first 200, one `NAME<TAB>ms` line in FILE), sends REQUESTS more requests over fresh
   connections, waits SETTLE, reads VmRSS, then times SIGTERM to exit.
2. *Untouched*: waits, without connecting, until the port is listening (read from
   /proc/net/tcp), waits SETTLE, reads VmRSS, then times SIGTERM to exit: the idle process
   before any request.

SIGTERM to exit is the time from kill(2) to the exit, as this script (the parent) sees it on a
pidfd. With --footprint, one `NAME<TAB>metric<TAB>value` line per figure goes to FILE2;
`--report` prints the Markdown tables of FILE and FILE2.
"""

import argparse
import contextlib
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import time

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
# Requests sent after the first 200 before "after requests" RSS is read.
REQUESTS = 20
# How long the process is left alone before its RSS is read, so it is read at rest.
SETTLE = 0.3
NAMES = {"swift": "Swift service", "go": "Go net/http"}
METRICS = [
    ("rss_untouched_kb", "idle RSS, no request yet"),
    ("rss_served_kb", f"idle RSS after {REQUESTS + 1} requests"),
    ("sigterm_untouched_ms", "SIGTERM to exit, no request yet"),
    ("sigterm_served_ms", f"SIGTERM to exit after {REQUESTS + 1} requests"),
]


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
            return head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
    except OSError:
        return False


def listening(port):
    """True once a socket listens on 127.0.0.1:PORT (state 0A in /proc/net/tcp), without connecting."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        return any(fields[1] == local and fields[3] == "0A" for fields in (line.split() for line in f))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def sigterm_to_exit_ms(proc, timeout=30.0):
    """Sends SIGTERM and returns the milliseconds until the process has exited.

    Waits on a pidfd, which turns readable when the process exits: `Popen.wait(timeout=...)`
    polls with sleeps of 0.5, 1, 2 ms... and would round every figure up to those steps.
    """
    pidfd = os.pidfd_open(proc.pid)
    try:
        started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        exited, _, _ = select.select([pidfd], [], [], timeout)
        elapsed = (time.perf_counter() - started) * 1000.0
    finally:
        os.close(pidfd)
    if not exited:
        raise RuntimeError(f"{proc.args[0]} still running {timeout}s after SIGTERM")
    proc.wait()
    return elapsed


def wait_until(proc, ready, what, timeout=10.0):
    started = time.perf_counter()
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {what}")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{proc.args[0]}: no {what} within {timeout}s")
        time.sleep(0.001)
    return (time.perf_counter() - started) * 1000.0


def one_start(binary, access_log, log, served):
    """One start; returns {metric: value}."""
    port = free_port()
    argv = [binary, "--host=127.0.0.1", f"--port={port}", f"--access-log={access_log}"]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        kind = "served" if served else "untouched"
        figures = {}
        if served:
            figures["first_200_ms"] = wait_until(proc, lambda: health_ok(port), "200 on /health")
            for _ in range(REQUESTS):
                if not health_ok(port):
                    raise RuntimeError(f"{binary}: /health failed after the first 200")
        else:
            wait_until(proc, lambda: listening(port), "listener")
        time.sleep(SETTLE)
        figures[f"rss_{kind}_kb"] = rss_kb(proc.pid)
        figures[f"sigterm_{kind}_ms"] = sigterm_to_exit_ms(proc)
        return figures
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def measure(args):
    servers = [spec.split("=", 1) for spec in args.servers]
    with open(args.out, "w") as out, contextlib.ExitStack() as stack:
        footprint = stack.enter_context(open(args.footprint, "w")) if args.footprint else None
        for _ in range(args.starts):
            for name, binary in servers:
                with open(os.path.join(args.logdir, f"{name}-startup.log"), "ab") as log:
                    figures = one_start(binary, args.access_log, log, served=True)
                    if footprint:
                        figures.update(one_start(binary, args.access_log, log, served=False))
                out.write(f"{name}\t{figures.pop('first_200_ms'):.2f}\n")
                out.flush()
                if footprint:
                    for metric, value in figures.items():
                        footprint.write(f"{name}\t{metric}\t{value:.2f}\n")
                    footprint.flush()


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def report(args):
    """The footprint tables (medians, with Swift ÷ Go), for run.sh's report."""
    values = {}
    with open(args.footprint) as f:
        for line in f:
            if line.strip():
                name, metric, value = line.split("\t")
                values.setdefault((name, metric), []).append(float(value))
    names = [n for n in NAMES if any(key[0] == n for key in values)]
    rows = []
    for metric, title in METRICS:
        row, medians = [title], {}
        for name in names:
            samples = values.get((name, metric), [])
            medians[name] = statistics.median(samples) if samples else None
            if medians[name] is None:
                row.append("-")
            elif metric.endswith("_kb"):
                row.append(f"{medians[name] / 1024:.1f} MiB")
            else:
                row.append(f"{medians[name]:.1f} ms (max {max(samples):.1f})")
        if medians.get("swift") and medians.get("go"):
            row.append(f"{medians['swift'] / medians['go']:.2f}")
        rows.append(row)
    starts = max((len(v) for v in values.values()), default=0)
    print(f"\n### Idle footprint (median of {starts} starts)\n")
    header = ["", *(NAMES[n] for n in names)] + (["Swift / Go"] if {"swift", "go"} <= set(names) else [])
    print(table(header, rows))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--access-log", default="true")
    parser.add_argument("--logdir")
    parser.add_argument("--out", required=True)
    parser.add_argument("--footprint", help="also measure idle RSS and SIGTERM to exit, into this file")
    parser.add_argument("--report", action="store_true", help="print the footprint tables of --footprint")
    parser.add_argument("servers", nargs="*", metavar="NAME=BINARY")
    args = parser.parse_args()
    if args.report:
        if not args.footprint:
            parser.error("--report needs --footprint")
        return report(args)
    if not args.servers or not args.logdir:
        parser.error("measuring needs --logdir and at least one NAME=BINARY")
    measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
