#!/usr/bin/env python3
"""Memory check for the service: no growth under a keep-alive soak, no per-connection leak.

    Benchmarks/memory-check.py                       # builds .build-memory/release/service
    Benchmarks/memory-check.py --binary PATH         # or checks this binary
    Benchmarks/memory-check.py --inject-leak 64      # self-test: must FAIL (see below)

Needs wrk, cc (gcc) and Linux /proc; Python 3 standard library only. About 80 s plus the build.

The service is started on 127.0.0.1 with `--port 0` (the port is read from its JSON
"service started" line) and `--access-log true`, so the soak also exercises the access-log
path (formatting, LogSink buffering, batched writes). Its stdout is a pipe drained by `wc -l`,
which keeps up with any log rate without a file growing by gigabytes, and counts the lines.
A sampler thread reads VmRSS (and RssAnon, threads, open fds) from /proc/PID/status every
second for the whole run.

Phase (a), soak: `wrk -t2 -c64 -d60s` on GET /health (keep-alive, full load).
    levelled-off RSS = median VmRSS of the samples taken 10 s to 20 s into the soak
    end RSS          = median VmRSS of the samples taken in the last 5 s of the soak
    PASS when end RSS <= levelled-off RSS * 1.10. A drop is reported but not a failure (memory
    given back is not a leak). wrk must also see no socket errors and no non-2xx answer.
    Sensitivity: 10% of a ~20 MiB process is ~2 MiB over the last ~40 s, i.e. several million
    requests here: a leak of even one byte per request would exceed it.

Phase (b), connection cycles: `conncycle` (Benchmarks/conncycle.c, compiled here with cc)
opens, uses and closes 100,000 connections in chunks of 10,000, with 8 client threads, each
cycle a connect, one `GET /health`, the full response read, and a close: a third with
`Connection: close` (server closes first), a third closed by the client with a FIN, a third
reset by the client (SO_LINGER 0). Client source addresses rotate over 127.0.0.2-.254 so that
TIME_WAIT never exhausts ephemeral ports (see conncycle.c). After each chunk the script waits
until the server's CPU time stops moving (connections torn down, logs flushed) and reads RSS.
    warm-up RSS = VmRSS after the first 10,000 cycles;  final RSS = VmRSS after 100,000
    PASS when final - warm-up <= 2 MiB, every cycle got a complete 200, and the server's open
    file descriptors after the 100,000 cycles equal those after the warm-up.
    Why 2 MiB: the smallest block glibc malloc hands out is a 32-byte chunk (and a Swift
    object has a 16-byte header before any field), so any leak of one allocation per
    connection costs at least 32 B x 90,000 cycles = 2.75 MiB of heap; 64 B of payload (an
    80-byte chunk) costs 6.9 MiB. Without a leak, the growth measured here is a few hundred
    KiB at most (allocator arenas settling, page granularity), so 2 MiB sits between the two.
    The warm-up matters too: memory the soak's 64 connections freed stays in the heap (about
    0.4 MiB here) and a leak first fills those holes without growing RSS; 10,000 cycles of
    even the smallest leak (0.3 MiB) use them up before the baseline is read. Self-test:
    `--inject-leak 24` (one 32-byte chunk per connection) measured +3.04 MiB, 35 B/cycle: FAIL.
    The fd check catches a leaked socket even where RSS would not show it.

Self-test: `--inject-leak N` starts the service with LD_PRELOAD of a tiny shim (compiled
here) that mallocs and touches N bytes on every accept4() the server makes and never frees
them; `--inject-request-leak N` does the same on every send(), i.e. every response. With
`--inject-leak 24` (the smallest malloc chunk) phase (b) must fail; with
`--inject-request-leak 1`, phase (a) (measured: +58% at the end of a 30 s soak). This needs a dynamically linked binary (the default
build is one); a fully static binary ignores LD_PRELOAD and the self-test would pass.

Prints a table (time, RSS) and the verdict, writes Benchmarks/results/memory.md (or --out),
and exits 0 when every criterion holds, 1 when one fails, 2 when the check could not run.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
MIB = 1024 * 1024

# Phase (a) windows, in seconds from the start of wrk.
LEVEL_WINDOW = (10.0, 20.0)
END_WINDOW_SECONDS = 5.0
SOAK_MAX_GROWTH = 0.10
# Phase (b): see the docstring for why 2 MiB.
CYCLE_MAX_GROWTH_BYTES = 2 * MIB

LEAK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Test-only: leaks LEAK_ACCEPT_BYTES per accepted connection, LEAK_SEND_BYTES per send(). */
static size_t bytes_from(const char *name) {
    const char *v = getenv(name);
    return v ? (size_t)strtoul(v, NULL, 10) : 0;
}
/* The last block goes to a volatile global, or the compiler would drop malloc and memset. */
static void *volatile last_leaked;
static void leak(size_t n) {
    if (n == 0) return;
    char *p = malloc(n);
    if (p) memset(p, 0x5a, n);
    last_leaked = p;
}
int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int r = real(fd, address, length, flags);
    if (r >= 0) leak(bytes_from("LEAK_ACCEPT_BYTES"));
    return r;
}
ssize_t send(int fd, const void *buf, size_t len, int flags) {
    static ssize_t (*real)(int, const void *, size_t, int);
    if (!real) real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    ssize_t r = real(fd, buf, len, flags);
    if (r > 0) leak(bytes_from("LEAK_SEND_BYTES"));
    return r;
}
"""


def log(message):
    print(f"[memory {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class SetupError(Exception):
    """The check could not run (exit 2), as opposed to a criterion failing (exit 1)."""


# --- /proc ------------------------------------------------------------------------------------

def proc_status(pid):
    """VmRSS, RssAnon (bytes), Threads and open fds of PID; None once it has exited."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    values[key] = int(rest.split()[0]) * 1024
                elif key == "Threads":
                    values[key] = int(rest)
        values["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None
    return values


def cpu_ticks(pid):
    """utime + stime of all of PID's threads, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def settle(pid, quiet=0.2, limit=5.0):
    """Waits until PID's CPU time stops moving for `quiet` seconds (bounded by `limit`), so
    the teardown of closed connections and the last log flush are over before RSS is read."""
    deadline = time.monotonic() + limit
    last = cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_ticks(pid)
        if now == last:
            return
        last = now


class Sampler(threading.Thread):
    """Reads /proc/PID/status every `interval` seconds on a fixed schedule."""

    def __init__(self, pid, t0, interval=1.0):
        super().__init__(daemon=True)
        self.pid, self.t0, self.interval = pid, t0, interval
        self.samples = []  # dicts: t (s since server start), phase, VmRSS, RssAnon, Threads, fds
        self.phase = "idle"
        self.stopped = threading.Event()

    def run(self):
        tick = time.monotonic()
        while not self.stopped.is_set():
            values = proc_status(self.pid)
            if values is None:
                return
            values["t"] = time.monotonic() - self.t0
            values["phase"] = self.phase
            self.samples.append(values)
            tick += self.interval
            self.stopped.wait(max(0.0, tick - time.monotonic()))

    def stop(self):
        self.stopped.set()
        self.join()


# --- building and starting ---------------------------------------------------------------------

def run_checked(argv, **kwargs):
    result = subprocess.run(argv, **kwargs)
    if result.returncode != 0:
        raise SetupError(f"{' '.join(argv)} exited with {result.returncode}")
    return result


def build_service():
    log("building the service (release, scratch path .build-memory)")
    run_checked(["swift", "build", "-c", "release", "--product", "service", "--scratch-path",
                 os.path.join(ROOT, ".build-memory")], cwd=ROOT, stdout=sys.stderr)
    return os.path.join(ROOT, ".build-memory", "release", "service")


def compile_c(source_path, output, extra=()):
    run_checked(["cc", "-O2", "-Wall", "-pthread", *extra, "-o", output, source_path], stdout=sys.stderr)


def read_line(fd, deadline):
    """One line from a pipe, read a byte at a time so nothing after it is consumed."""
    line = bytearray()
    while time.monotonic() < deadline:
        chunk = os.read(fd, 1)
        if not chunk:
            break
        if chunk == b"\n":
            return bytes(line)
        line += chunk
    return bytes(line) if line else None


class Server:
    """The service on 127.0.0.1:0, stdout drained (and its lines counted) by `wc -l`."""

    def __init__(self, binary, access_log, workdir, env_extra=None):
        env = dict(os.environ)
        env.update(env_extra or {})
        self.stderr_path = os.path.join(workdir, "service.stderr")
        self.argv = [binary, "--host=127.0.0.1", "--port=0", f"--access-log={access_log}"]
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=stderr, env=env)
        self.t0 = time.monotonic()
        self.port = None
        self.lines_before_counter = 0
        fd = self.proc.stdout.fileno()
        # Startup: the first lines, up to the "service started" one, which names the port.
        deadline = time.monotonic() + 15
        while self.port is None:
            line = read_line(fd, deadline)
            if line is None:
                raise SetupError(f"the service printed no \"service started\" line; stderr: {self.stderr_tail()}")
            self.lines_before_counter += 1
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == "service started" and "port" in record:
                self.port = int(record["port"])
        self.counter = subprocess.Popen(["wc", "-l"], stdin=fd, stdout=subprocess.PIPE)
        self.proc.stdout.close()  # wc holds the only read end now

    def stderr_tail(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace").strip() or "(empty)"
        except OSError:
            return "(unreadable)"

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, wait; returns (exit status, stdout lines)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out, _ = self.counter.communicate(timeout=30)
        return self.proc.returncode, self.lines_before_counter + int(out.split()[0] or 0)


def health_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# --- phases ------------------------------------------------------------------------------------

def parse_wrk(output):
    def number(pattern, default=0.0):
        m = re.search(pattern, output)
        return float(m.group(1)) if m else default
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests": int(number(r"(\d+) requests in")),
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "non2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "socket_errors_text": errors.group(0) if errors else "none",
    }


def soak(server, sampler, args):
    log(f"phase (a): wrk -t{args.threads} -c{args.connections} -d{args.soak}s on /health, keep-alive")
    sampler.phase = "soak"
    start = time.monotonic() - server.t0
    result = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.soak}s",
         f"http://127.0.0.1:{server.port}/health"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.monotonic() - server.t0
    sampler.phase = "idle"
    if result.returncode != 0:
        raise SetupError(f"wrk exited with {result.returncode}: {result.stdout.strip()}")
    wrk = parse_wrk(result.stdout)

    def window(lo, hi):
        return [s["VmRSS"] for s in sampler.samples if s["phase"] == "soak" and lo <= s["t"] <= hi]

    level_samples = window(start + LEVEL_WINDOW[0], start + LEVEL_WINDOW[1])
    end_samples = window(end - END_WINDOW_SECONDS, end)
    if len(level_samples) < 5 or len(end_samples) < 3:
        raise SetupError(f"too few RSS samples in the soak windows ({len(level_samples)}, {len(end_samples)})")
    level = statistics.median(level_samples)
    final = statistics.median(end_samples)
    change = (final - level) / level
    peak = max(s["VmRSS"] for s in sampler.samples if s["phase"] == "soak")
    problems = []
    if change > SOAK_MAX_GROWTH:
        problems.append(f"RSS grew {change:+.1%} from the levelled-off value (limit +{SOAK_MAX_GROWTH:.0%})")
    if wrk["socket_errors"] or wrk["non2xx"]:
        problems.append(f"wrk: {wrk['socket_errors_text']}, non-2xx {wrk['non2xx']}")
    return {
        "start": start, "end": end, "level": level, "final": final, "change": change, "peak": peak,
        "level_n": len(level_samples), "end_n": len(end_samples), "wrk": wrk, "problems": problems,
    }


def cycles(server, sampler, conncycle, args):
    log(f"phase (b): {args.cycles} connection cycles in chunks of {args.chunk}, {args.client_threads} client threads")
    settle(server.proc.pid)
    sampler.phase = "cycles"
    checkpoints = []  # (cycles done, status dict, chunk seconds, chunk result)
    done = 0
    client_seconds = 0.0
    errors = 0
    first_error = ""
    started = time.monotonic()
    while done < args.cycles:
        n = min(args.chunk, args.cycles - done)
        result = subprocess.run([conncycle, str(server.port), str(n), str(args.client_threads), str(done)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            report = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise SetupError(f"conncycle failed ({result.returncode}): {result.stdout}{result.stderr}")
        done += n
        client_seconds += report["seconds"]
        errors += report["cycles"] - report["ok"]
        first_error = first_error or report["first_error"]
        if not server.alive():
            raise SetupError(f"the service exited during phase (b); stderr: {server.stderr_tail()}")
        settle(server.proc.pid)
        status = proc_status(server.proc.pid)
        checkpoints.append((done, status, report["seconds"], time.monotonic() - server.t0))
    wall = time.monotonic() - started
    sampler.phase = "idle"

    warm = next((c for c in checkpoints if c[0] >= args.warmup_cycles), checkpoints[0])
    last = checkpoints[-1]
    growth = last[1]["VmRSS"] - warm[1]["VmRSS"]
    measured_cycles = last[0] - warm[0]
    problems = []
    if growth > CYCLE_MAX_GROWTH_BYTES:
        problems.append(f"RSS grew {growth / MIB:.2f} MiB over {measured_cycles} cycles after the warm-up "
                        f"(limit {CYCLE_MAX_GROWTH_BYTES / MIB:.0f} MiB; {growth / max(1, measured_cycles):.1f} B/cycle)")
    if last[1]["fds"] != warm[1]["fds"]:
        problems.append(f"open fds went from {warm[1]['fds']} after the warm-up to {last[1]['fds']}")
    if errors:
        problems.append(f"{errors} cycles failed (first: {first_error})")
    return {
        "checkpoints": checkpoints, "warm": warm, "last": last, "growth": growth,
        "measured_cycles": measured_cycles, "client_seconds": client_seconds, "wall": wall,
        "rate": args.cycles / client_seconds if client_seconds else 0.0, "errors": errors,
        "problems": problems,
    }


# --- report ------------------------------------------------------------------------------------

def mib(value):
    return f"{value / MIB:.2f}"


def verdict_lines(a, b, extra):
    lines = []
    lines.append(f"(a) soak: levelled-off RSS {mib(a['level'])} MiB (median of {a['level_n']} samples, "
                 f"{LEVEL_WINDOW[0]:.0f}-{LEVEL_WINDOW[1]:.0f} s), end RSS {mib(a['final'])} MiB (median of "
                 f"{a['end_n']}, last {END_WINDOW_SECONDS:.0f} s): {a['change']:+.2%} "
                 f"(limit +{SOAK_MAX_GROWTH:.0%}) -> {'FAIL' if a['problems'] else 'PASS'}")
    lines.append(f"(b) cycles: RSS after {b['warm'][0]} cycles {mib(b['warm'][1]['VmRSS'])} MiB, after "
                 f"{b['last'][0]} {mib(b['last'][1]['VmRSS'])} MiB: growth {b['growth'] / 1024:+.0f} KiB "
                 f"({b['growth'] / max(1, b['measured_cycles']):+.1f} B/cycle; limit {CYCLE_MAX_GROWTH_BYTES / MIB:.0f} MiB), "
                 f"fds {b['warm'][1]['fds']} -> {b['last'][1]['fds']}, {b['errors']} failed cycles "
                 f"-> {'FAIL' if b['problems'] else 'PASS'}")
    for problem in a["problems"] + b["problems"] + extra:
        lines.append(f"    FAIL: {problem}")
    return lines


def write_report(path, args, binary, a, b, samples, server_exit, log_lines, total_seconds, extra):
    revision = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "Sources", "Package.swift"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    if dirty:
        revision += " with uncommitted changes in Sources/"
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    failed = bool(a["problems"] or b["problems"] or extra)
    requests = a["wrk"]["requests"] + args.cycles
    out = []
    out.append("# Memory check: soak and connection cycles, GET /health")
    out.append("")
    out.append(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    out.append(f"- machine: {os.cpu_count()} CPUs, {cpu}, Linux {platform.release()}")
    out.append(f"- service: {os.path.relpath(binary, ROOT) if binary.startswith(ROOT) else binary} built from {revision}")
    out.append(f"- service flags: `--host=127.0.0.1 --port=0 --access-log={args.access_log}`, stdout piped to `wc -l`")
    if args.inject_leak or args.inject_request_leak:
        out.append(f"- **self-test**: leak injected with LD_PRELOAD: {args.inject_leak} B per accept4(), "
                   f"{args.inject_request_leak} B per send()")
    out.append(f"- verdict: **{'FAIL' if failed else 'PASS'}**; total time {total_seconds:.0f} s "
               f"(build excluded); server exit status after SIGTERM {server_exit}")
    out.append("")
    out.append("| criterion | measured | limit | result |")
    out.append("|---|---|---|---|")
    out.append(f"| (a) soak, end vs levelled-off RSS | {mib(a['level'])} → {mib(a['final'])} MiB, "
               f"**{a['change']:+.2%}** | +{SOAK_MAX_GROWTH:.0%} | {'FAIL' if a['problems'] else 'PASS'} |")
    out.append(f"| (b) RSS growth, {b['warm'][0]:,} → {b['last'][0]:,} cycles | {mib(b['warm'][1]['VmRSS'])} → "
               f"{mib(b['last'][1]['VmRSS'])} MiB, **{b['growth'] / 1024:+.0f} KiB** "
               f"({b['growth'] / max(1, b['measured_cycles']):+.1f} B/cycle) | {CYCLE_MAX_GROWTH_BYTES / MIB:.0f} MiB | "
               f"{'FAIL' if any('RSS' in p for p in b['problems']) else 'PASS'} |")
    out.append(f"| (b) open fds, same points | {b['warm'][1]['fds']} → {b['last'][1]['fds']} | equal | "
               f"{'FAIL' if any('fds' in p for p in b['problems']) else 'PASS'} |")
    out.append(f"| (b) cycles answered 200 | {args.cycles - b['errors']:,} of {args.cycles:,} | all | "
               f"{'FAIL' if b['errors'] else 'PASS'} |")
    out.append("")
    for problem in a["problems"] + b["problems"] + extra:
        out.append(f"- FAIL: {problem}")
    if failed:
        out.append("")
    w = a["wrk"]
    out.append(f"Soak: wrk -t{args.threads} -c{args.connections} -d{args.soak}s, {w['requests']:,} requests, "
               f"{w['rps']:,.0f} req/s, socket errors: {w['socket_errors_text']}, non-2xx {w['non2xx']}; "
               f"peak RSS {mib(a['peak'])} MiB. Levelled-off = median VmRSS {LEVEL_WINDOW[0]:.0f}–"
               f"{LEVEL_WINDOW[1]:.0f} s into the soak, end = median of its last {END_WINDOW_SECONDS:.0f} s.")
    out.append("")
    out.append(f"Cycles: {args.cycles:,} in {b['client_seconds']:.1f} s of client time "
               f"({b['rate']:,.0f} cycles/s, {args.client_threads} client threads; {b['wall']:.1f} s with the "
               f"settling pauses), a third each `Connection: close`, client FIN, client RST. RSS read after each "
               f"chunk once the server's CPU time stopped moving.")
    out.append("")
    out.append(f"Access log: {log_lines:,} stdout lines for about {requests:,} requests "
               f"(wrk's count excludes requests in flight when it stopped; fewer lines than requests would "
               f"mean dropped lines).")
    out.append("")
    out.append("| cycles | VmRSS MiB | RssAnon MiB | threads | fds | chunk s | time s |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    for done, status, seconds, t in b["checkpoints"]:
        out.append(f"| {done:,} | {mib(status['VmRSS'])} | {mib(status['RssAnon'])} | {status['Threads']} | "
                   f"{status['fds']} | {seconds:.2f} | {t:.1f} |")
    out.append("")
    out.append("<details><summary>RSS every second</summary>")
    out.append("")
    out.append("| time s | phase | VmRSS MiB | RssAnon MiB | threads | fds |")
    out.append("|---:|---|---:|---:|---:|---:|")
    for s in samples:
        out.append(f"| {s['t']:.0f} | {s['phase']} | {mib(s['VmRSS'])} | {mib(s['RssAnon'])} | {s['Threads']} | {s['fds']} |")
    out.append("")
    out.append("</details>")
    out.append("")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out))
    os.replace(tmp, path)


def print_table(a, b, samples):
    print("\n  time s  phase    VmRSS MiB  RssAnon MiB")
    soak_start = a["start"]
    for s in samples:
        # Every second before and after the soak, every 5 s during it (the report has them all).
        if s["phase"] == "soak" and int(round(s["t"] - soak_start)) % 5 != 0:
            continue
        print(f"  {s['t']:6.0f}  {s['phase']:<7} {s['VmRSS'] / MIB:10.2f}  {s['RssAnon'] / MIB:11.2f}")
    print("\n  cycles   VmRSS MiB  RssAnon MiB  fds  chunk s")
    for done, status, seconds, _ in b["checkpoints"]:
        print(f"  {done:7d}  {status['VmRSS'] / MIB:9.2f}  {status['RssAnon'] / MIB:11.2f}  {status['fds']:3d}  {seconds:7.2f}")
    print()


# --- main --------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", help="service binary (default: build .build-memory/release/service)")
    parser.add_argument("--soak", type=int, default=60, help="soak seconds (default 60, at least 30)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--cycles", type=int, default=100_000, help="connection cycles (default 100000)")
    parser.add_argument("--warmup-cycles", type=int, default=10_000, help="cycles before the baseline (default 10000)")
    parser.add_argument("--chunk", type=int, default=10_000, help="cycles between RSS readings (default 10000)")
    parser.add_argument("--client-threads", type=int, default=8, help="conncycle threads (default 8)")
    parser.add_argument("--access-log", choices=["true", "false"], default="true")
    parser.add_argument("--out", default=os.path.join(BENCH_DIR, "results", "memory.md"))
    parser.add_argument("--inject-leak", type=int, default=0, metavar="BYTES",
                        help="self-test: leak BYTES per accepted connection (LD_PRELOAD)")
    parser.add_argument("--inject-request-leak", type=int, default=0, metavar="BYTES",
                        help="self-test: leak BYTES per response sent (LD_PRELOAD)")
    args = parser.parse_args()
    if args.soak < 30:
        parser.error("--soak must be at least 30 seconds (the levelled-off window is 10-20 s)")
    if not 0 < args.warmup_cycles < args.cycles or args.chunk <= 0:
        parser.error("need 0 < --warmup-cycles < --cycles and --chunk > 0")
    for tool, package in (("wrk", "wrk"), ("cc", "gcc"), ("wc", "coreutils")):
        if shutil.which(tool) is None:
            print(f"memory-check: {tool} is not installed (Debian: apt-get install -y {package})", file=sys.stderr)
            return 2

    server = None
    try:
        binary = os.path.abspath(args.binary) if args.binary else build_service()
        if not os.access(binary, os.X_OK):
            raise SetupError(f"{binary} is not an executable")
        with tempfile.TemporaryDirectory(prefix="memory-check.") as workdir:
            conncycle = os.path.join(workdir, "conncycle")
            compile_c(os.path.join(BENCH_DIR, "conncycle.c"), conncycle)
            env_extra = {}
            if args.inject_leak or args.inject_request_leak:
                shim_c = os.path.join(workdir, "leakshim.c")
                with open(shim_c, "w") as f:
                    f.write(LEAK_SHIM)
                shim = os.path.join(workdir, "leakshim.so")
                compile_c(shim_c, shim, extra=("-shared", "-fPIC", "-ldl"))
                env_extra = {"LD_PRELOAD": shim, "LEAK_ACCEPT_BYTES": str(args.inject_leak),
                             "LEAK_SEND_BYTES": str(args.inject_request_leak)}
                log(f"self-test: injecting a leak of {args.inject_leak} B per connection, "
                    f"{args.inject_request_leak} B per response")

            began = time.monotonic()
            server = Server(binary, args.access_log, workdir, env_extra)
            log(f"service up: pid {server.proc.pid}, port {server.port}, {' '.join(server.argv[1:])}")
            if not health_ok(server.port):
                raise SetupError(f"/health did not answer 200; stderr: {server.stderr_tail()}")
            sampler = Sampler(server.proc.pid, server.t0)
            sampler.start()
            time.sleep(1.5)  # two idle samples for the table

            a = soak(server, sampler, args)
            if not server.alive():
                raise SetupError(f"the service exited during the soak; stderr: {server.stderr_tail()}")
            b = cycles(server, sampler, conncycle, args)
            time.sleep(1.0)
            sampler.stop()
            extra = []
            server_exit, log_lines = server.stop()
            if server_exit != 0:
                extra.append(f"the service exited {server_exit} after SIGTERM (expected 0); stderr: {server.stderr_tail()}")
            total = time.monotonic() - began
            server = None

        print_table(a, b, sampler.samples)
        lines = verdict_lines(a, b, extra)
        failed = bool(a["problems"] or b["problems"] or extra)
        print("\n".join(lines))
        print(f"soak: {a['wrk']['requests']:,} requests, {a['wrk']['rps']:,.0f} req/s; cycles: "
              f"{b['rate']:,.0f}/s ({args.cycles:,} in {b['client_seconds']:.1f} s); access-log lines {log_lines:,}; "
              f"total {total:.0f} s")
        print(f"VERDICT: {'FAIL' if failed else 'PASS'}")
        write_report(args.out, args, binary, a, b, sampler.samples, server_exit, log_lines, total, extra)
        log(f"wrote {os.path.relpath(args.out, ROOT) if args.out.startswith(ROOT) else args.out}")
        return 1 if failed else 0
    except SetupError as error:
        print(f"memory-check: {error}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # the table and the [memory] lines in order
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
