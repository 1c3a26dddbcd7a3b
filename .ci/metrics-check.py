#!/usr/bin/env python3
"""Scrapes a running `service` binary's /metrics and parses it with the Prometheus project's own
Python client parser (prometheus-client from PyPI), as a second opinion on the format beside the
Swift tests' checker. Checks that counters and the duration histogram move with requests and that
a flood of random paths adds no series.

    metrics-check.py --binary .build-static/release/service
"""

import argparse
import http.client
import random
import signal
import socket
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def scrape(port):
    response, body = get(port, "/metrics")
    assert response.status == 200, f"/metrics answered {response.status}"
    content_type = response.getheader("Content-Type")
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    families = {}
    for family in text_string_to_metric_families(body.decode()):
        assert family.name not in families, f"family {family.name} twice"
        families[family.name] = family
    return families, body.decode()


def value(families, family, sample, labels=None):
    labels = labels or {}
    for s in families[family].samples:
        if s.name == sample and s.labels == labels:
            return s.value
    return 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    args = parser.parse_args()

    port = free_port()
    process = subprocess.Popen([args.binary, "--host=127.0.0.1", f"--port={port}", "--access-log=false"],
                               stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                get(port, "/health")
                break
            except OSError:
                time.sleep(0.02)
        before, _ = scrape(port)
        # prometheus_client names counter families without the _total suffix.
        requests = "http_server_requests"
        health = {"method": "GET", "route": "/health", "status_class": "2xx"}
        unmatched = {"method": "GET", "route": "unmatched", "status_class": "4xx"}
        for _ in range(5):
            assert get(port, "/health")[0].status == 200
        flood = [f"/flood/{i}/{random.getrandbits(64)}" for i in range(200)]
        for path in flood:
            assert get(port, path)[0].status == 404
        after, text = scrape(port)

        expected_types = {
            requests: "counter", "http_server_request_duration_seconds": "histogram",
            "http_server_requests_in_flight": "gauge", "http_server_connections": "gauge",
            "http_server_connections_accepted": "counter", "http_server_connections_refused": "counter",
            "http_server_draining": "gauge", "http_server_received_bytes": "counter",
            "http_server_sent_bytes": "counter", "process_resident_memory_bytes": "gauge",
            "process_virtual_memory_bytes": "gauge", "process_cpu_seconds": "counter", "process_open_fds": "gauge",
            "process_max_fds": "gauge", "process_start_time_seconds": "gauge", "service_build_info": "gauge",
            "log_lines_dropped": "counter",
        }
        for name, kind in expected_types.items():
            assert name in after, f"{name} missing"
            assert after[name].type == kind, f"{name} is a {after[name].type}, not a {kind}"
            assert after[name].documentation, f"{name} has no HELP"

        moved = value(after, requests, requests + "_total", health) - value(before, requests, requests + "_total", health)
        assert moved == 5, f"GET /health counter moved by {moved}, not 5"
        assert value(after, requests, requests + "_total", unmatched) == 200
        duration = "http_server_request_duration_seconds"
        count = value(after, duration, duration + "_count", {"route": "/health"})
        assert count - value(before, duration, duration + "_count", {"route": "/health"}) == 5
        inf = value(after, duration, duration + "_bucket", {"route": "/health", "le": "+Inf"})
        assert inf == count, f"+Inf bucket {inf} != count {count}"
        assert "/flood/" not in text, "a raw path became a label value"
        routes = {s.labels.get("route") for s in after[requests].samples}
        assert routes <= {"/health", "/metrics", "unmatched"}, routes
        print(f"ok: {len(after)} metric families parsed by prometheus_client; counters and histogram moved; "
              f"200 random paths -> one 'unmatched' series")
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=10)
    if status != 0:
        print(f"FAIL: the service exited {status} after SIGTERM", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
