#!/usr/bin/env python3
"""/health latency beside a client whose requests are CPU-heavy for the server.

    heavy-client.py [--seconds 5] [--rounds 3] [--event-loops 1] [--out FILE] NAME=BINARY [...]

For each binary and round, two phases of SECONDS each, on a server started with
`--host=127.0.0.1 --port=PORT --access-log=false --event-loops=N`:

1. *alone*: one keep-alive client asks GET /health back to back; every latency is recorded.
2. *beside a heavy client*: the same, while a second client posts `POST /greetings` bodies of
   about 1 MB (a name padded with 1,000,000 spaces: tens of milliseconds to decode) back to back
   on its own keep-alive connection.

With one event loop both clients share it, which is the case that shows whether the heavy
work holds the loop. Prints, and with --out writes, a Markdown table of /health p50, p99 and
max per binary and phase (the median over rounds), and the heavy requests answered.
A report, not a timed test: figures depend on the machine and its load.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HEALTH = b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"


def heavy_request() -> bytes:
    body = b'{"name":"' + b" " * 1_000_000 + b'Ada","greeting":"Hi"}'
    return (b"POST /greetings HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_response(sock: socket.socket, buffer: bytearray) -> int:
    """Reads one response with a Content-Length; returns its status."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    buffer[:] = rest[length:]
    return status


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("server did not listen")


def probe(port: int, seconds: float) -> list[float]:
    latencies = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            sock.sendall(HEALTH)
            if read_response(sock, buffer) != 200:
                raise RuntimeError("/health did not answer 200")
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def heavy(port: int, stop: threading.Event, answered: list[int]) -> None:
    request = heavy_request()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        buffer = bytearray()
        while not stop.is_set():
            sock.sendall(request)
            answered.append(read_response(sock, buffer))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def run(binary: str, seconds: float, loops: int) -> dict:
    port = free_port()
    process = subprocess.Popen(
        [binary, "--host=127.0.0.1", f"--port={port}", "--access-log=false", f"--event-loops={loops}",
         "--max-body-bytes=2000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        alone = probe(port, seconds)
        stop = threading.Event()
        answered: list[int] = []
        worker = threading.Thread(target=heavy, args=(port, stop, answered))
        worker.start()
        time.sleep(0.2)
        beside = probe(port, seconds)
        stop.set()
        worker.join()
        return {"alone": alone, "beside": beside, "heavy": answered}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--event-loops", type=int, default=1)
    parser.add_argument("--out")
    parser.add_argument("servers", nargs="+", help="NAME=BINARY")
    args = parser.parse_args()
    servers = [s.split("=", 1) for s in args.servers]
    results: dict[str, dict[str, list]] = {name: {} for name, _ in servers}
    for _ in range(args.rounds):
        for name, binary in servers:  # the servers take turns, round by round
            outcome = run(binary, args.seconds, args.event_loops)
            for phase in ("alone", "beside"):
                lat = outcome[phase]
                for key, value in (("p50", percentile(lat, 0.5)), ("p99", percentile(lat, 0.99)), ("max", max(lat)),
                                   ("count", len(lat))):
                    results[name].setdefault((phase, key), []).append(value)
            results[name].setdefault(("heavy", "ok"), []).append(sum(1 for s in outcome["heavy"] if s == 201))
            results[name].setdefault(("heavy", "all"), []).append(len(outcome["heavy"]))
    lines = [
        f"/health latency, one keep-alive client, {args.seconds:g} s a phase, medians of {args.rounds} rounds, "
        f"--event-loops={args.event_loops}, access log off.",
        "",
        "| server | phase | /health p50 ms | p99 ms | max ms | /health answered | heavy POSTs answered (201) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, _ in servers:
        r = results[name]
        for phase, label in (("alone", "alone"), ("beside", "beside a heavy client")):
            heavy_cell = "" if phase == "alone" else (
                f"{statistics.median(r[('heavy', 'ok')]):g} of {statistics.median(r[('heavy', 'all')]):g}")
            lines.append(
                f"| {name} | {label} | {statistics.median(r[(phase, 'p50')]):.3f} | {statistics.median(r[(phase, 'p99')]):.3f} "
                f"| {statistics.median(r[(phase, 'max')]):.1f} | {statistics.median(r[(phase, 'count')]):g} | {heavy_cell} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    sys.exit(main())
