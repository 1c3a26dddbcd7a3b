#!/usr/bin/env python3
"""The OTel trait's span export, checked against a real OTLP/HTTP receiver (otlp-receiver.py,
which decodes the protobuf wire format with opentelemetry-proto).

    otel_check.py --binary .build-otel-static/release/service [--plain .build-static/release/service]

With the receiver up: a request with a `traceparent` continues the caller's trace (the server
span's parent is the caller's span), one without starts a new trace, a handler's child span
(`GET /delay`'s `delay`) has the server span as its parent, the server span carries the HTTP
attributes and the resource the OTEL_* variables set, probes are not traced, the access-log
line has the span's IDs, and the spans of a request in flight at SIGTERM reach the receiver
before the process exits. With the receiver down: every request is answered, the lost spans
are counted in tracing_spans_dropped_total, and one warning says so. Then the variant's size
and start-up beside the plain binary's (--plain), for the report.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(condition, what):
    print(("ok: " if condition else "FAIL: ") + what, flush=True)
    if not condition:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.01)
    return False


def get(port, path, headers=None, timeout=10):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


class Service:
    def __init__(self, binary, env, log_path):
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "w")
        full_env = {"PATH": "/usr/bin:/bin"}
        full_env.update(env)
        self.process = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(self.port), "--drain-linger", "200ms"],
            env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.port):
            raise SystemExit(f"the service did not start: see {log_path}")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code

    def lines(self):
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.startswith("{")]


def spans(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def wait_for(condition, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def collector_up(binary, work):
    print("\n--- receiver up", flush=True)
    receiver_port = free_port()
    spans_path = os.path.join(work, "spans.jsonl")
    receiver = subprocess.Popen([sys.executable, os.path.join(HERE, "otlp-receiver.py"),
                                 "--port", str(receiver_port), "--out", spans_path])
    try:
        assert wait_for_port(receiver_port), "the receiver did not start"
        service = Service(binary, {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver_port}",
            "OTEL_SERVICE_NAME": "otel-check",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }, os.path.join(work, "up.log"))
        caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        other_trace, other_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
        status, _ = get(service.port, "/hello/Ada", {
            "traceparent": f"00-{caller_trace}-{caller_span}-01", "X-Request-ID": "with-parent"})
        check(status == 200, "GET /hello/Ada with a traceparent answered 200")
        status, _ = get(service.port, "/hello/Bob", {"X-Request-ID": "no-parent"})
        check(status == 200, "GET /hello/Bob without one answered 200")
        status, _ = get(service.port, "/delay?ms=10", {"traceparent": f"00-{other_trace}-{other_span}-01"})
        check(status == 200, "GET /delay?ms=10 answered 200")
        status, _ = get(service.port, "/health")
        check(status == 200, "GET /health answered 200")

        # A request in flight when SIGTERM comes: its spans must leave before the process does.
        result = {}

        def slow():
            result["status"], _ = get(service.port, "/delay?ms=1500", {"X-Request-ID": "in-flight"})

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.4)
        service.process.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        code = service.process.wait(timeout=60)
        exited = time.time()
        service.log.close()
        check(result.get("status") == 200, "the request in flight at SIGTERM was answered")
        check(code == 0, f"the service exited 0 after the drain (exit {code})")

        found = spans(spans_path)
        print(f"received {len(found)} spans", flush=True)
        by_name = {}
        for span in found:
            by_name.setdefault(span["name"], []).append(span)
        hello = by_name.get("GET /hello/:name", [])
        continued = [s for s in hello if s["trace_id"] == caller_trace]
        check(len(continued) == 1, "the span of the request with a traceparent continues the caller's trace")
        if continued:
            span = continued[0]
            attributes = span["attributes"]
            check(span["parent_span_id"] == caller_span, "its parent is the caller's span")
            check(span["kind"] == 2, "it is a server span")
            expected = {
                "http.request.method": "GET", "http.route": "/hello/:name", "http.response.status_code": 200,
                "url.path": "/hello/Ada", "url.scheme": "http", "server.port": service.port,
                "client.address": "127.0.0.1", "network.protocol.version": "1.1",
            }
            for key, value in expected.items():
                check(attributes.get(key) == value, f"attribute {key} = {value!r} (got {attributes.get(key)!r})")
            check(span["resource"].get("service.name") == "otel-check", "resource service.name from OTEL_SERVICE_NAME")
            check(span["resource"].get("deployment.environment") == "ci", "resource attributes from OTEL_RESOURCE_ATTRIBUTES")
            access = [line for line in service.lines() if line.get("request_id") == "with-parent"]
            check(len(access) == 1 and access[0].get("trace_id") == caller_trace
                  and access[0].get("span_id") == span["span_id"],
                  "its access-log line carries the span's trace_id and span_id")
        fresh = [s for s in hello if s["trace_id"] != caller_trace]
        check(len(fresh) == 1 and fresh[0]["parent_span_id"] == "" and fresh[0]["trace_id"] != "0" * 32,
              "the request without a traceparent started a new trace")
        servers = [s for s in by_name.get("GET /delay", []) if s["trace_id"] == other_trace]
        children = [s for s in by_name.get("delay", []) if s["trace_id"] == other_trace]
        check(len(servers) == 1 and len(children) == 1 and children[0]["parent_span_id"] == servers[0]["span_id"]
              and servers[0]["parent_span_id"] == other_span,
              "a handler's child span links to its server span, and that to the caller's")
        check("GET /health" not in by_name, "probes are not traced")
        in_flight = [s for s in by_name.get("GET /delay", []) if s["end_ns"] - s["start_ns"] >= 1_400_000_000]
        check(len(in_flight) == 1 and in_flight[0]["received"] <= exited,
              "the span of the request in flight at SIGTERM arrived before the process exited")
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=10)


def collector_down(binary, work):
    print("\n--- receiver down", flush=True)
    service = Service(binary, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }, os.path.join(work, "down.log"))
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    statuses, durations = [], []
    for i in range(300):
        started = time.time()
        connection.request("GET", f"/hello/n{i}")
        response = connection.getresponse()
        response.read()
        durations.append(time.time() - started)
        statuses.append(response.status)
    connection.close()
    check(statuses == [200] * 300, "all 300 requests answered 200 with the collector down")
    print(f"median request time {statistics.median(durations) * 1000:.2f} ms, max {max(durations) * 1000:.1f} ms")

    def dropped():
        _, body = get(service.port, "/metrics")
        for line in body.decode().splitlines():
            if line.startswith("tracing_spans_dropped_total"):
                return float(line.split()[-1])
        return 0.0

    check(wait_for(lambda: dropped() >= 1, timeout=15), "the lost spans are counted in tracing_spans_dropped_total")
    print(f"tracing_spans_dropped_total {dropped():.0f}")
    for i in range(50):
        get(service.port, f"/hello/again{i}")
    time.sleep(1)
    started = time.time()
    code = service.stop()
    elapsed = time.time() - started
    # The drain linger (200 ms) plus the flush's export timeout (2 s) plus slack.
    check(code == 0 and elapsed < 5, f"the service exited 0 (exit {code}) in {elapsed:.2f} s, under 5 s")
    warnings = [line for line in service.lines() if "span export failing" in line.get("msg", "")]
    check(len(warnings) == 1, f"one warning for the failing collector (got {len(warnings)})")


def start_to_first_200(binary, runs=5):
    times = []
    for _ in range(runs):
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port)],
                                   env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                if get(port, "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.0005)
        times.append((time.perf_counter() - started) * 1000)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return statistics.median(times)


def stripped_size(binary, work):
    out = os.path.join(work, os.path.basename(binary) + ".stripped")
    subprocess.run(["strip", "-o", out, binary], check=True)
    return os.path.getsize(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--plain")
    parser.add_argument("--work", default="/tmp/otel-check")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    for name in ("spans.jsonl",):
        path = os.path.join(args.work, name)
        if os.path.exists(path):
            os.remove(path)
    collector_up(args.binary, args.work)
    collector_down(args.binary, args.work)
    print("\n--- the variant beside the plain build", flush=True)
    rows = [("OTel trait", args.binary)] + ([("default", args.plain)] if args.plain else [])
    print("| build | stripped size | start to first 200 (median of 5) |\n|---|---:|---:|")
    for name, binary in rows:
        print(f"| {name} | {stripped_size(binary, args.work) / 1048576:.2f} MiB | {start_to_first_200(binary):.1f} ms |")
    if failures:
        print(f"\n{len(failures)} check(s) failed", flush=True)
        sys.exit(1)
    print("\nall OTel checks passed")


if __name__ == "__main__":
    main()
