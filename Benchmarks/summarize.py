#!/usr/bin/env python3
"""Turns the raw files of one Benchmarks/run.sh run into Markdown tables on stdout.

    summarize.py --runs RUNS.tsv --startup STARTUP.tsv --clk-tck 100

RUNS.tsv has a header line and one row per wrk run:
    server conns round wrk_output cpu_ticks_before cpu_ticks_after rss_kb_before rss_kb_after log_lines
    other_ticks window_ms
STARTUP.tsv has one `server<TAB>milliseconds` row per start.
Every figure shown is the median over the rounds (or starts).
"""

import argparse
import csv
import os
import re
import statistics
import sys

NAMES = {"swift": "Swift service", "swift-nometrics": "Swift service, metrics off",
         "swift-baseline": "Swift service, baseline", "swift-baseline2": "Swift service, baseline 2",
         "go": "Go net/http", "nginx": "nginx, 1 process"}
ORDER = ["swift", "swift-nometrics", "swift-baseline", "swift-baseline2", "go", "nginx"]
UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def parse_duration_us(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unrecognised wrk duration {text!r}")
    return float(match.group(1)) * UNITS_US[match.group(2)]


def parse_wrk(path):
    """Requests/sec, completed requests, p50/p99 in µs and error counts from `wrk --latency`."""
    with open(path) as f:
        text = f.read()
    out = {"errors": 0, "non2xx": 0}
    match = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not match:
        raise ValueError(f"{path}: no Requests/sec line; wrk said:\n{text}")
    out["rps"] = float(match.group(1))
    out["requests"] = int(re.search(r"^\s*(\d+) requests in ", text, re.M).group(1))
    for pct in ("50", "99"):
        match = re.search(rf"^\s*{pct}%\s+(\S+)", text, re.M)
        out[f"p{pct}"] = parse_duration_us(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if match:
        out["errors"] = sum(int(g) for g in match.groups())
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if match:
        out["non2xx"] = int(match.group(1))
    return out


def fmt_latency(us):
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def fmt_mib(kb):
    return f"{kb / 1024:.1f} MiB"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def handshakes(path, clk_tck):
    """New TLS connections per second and server CPU per connection, medians over the rounds."""
    rows = {}
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            connections = int(row["connections"])
            if connections == 0:
                continue
            rate = connections / float(row["seconds"])
            cpu_us = int(row["cpu_ticks"]) * 1e6 / clk_tck / connections
            rows.setdefault((row["server"], row["kind"]), []).append((rate, cpu_us))
    if not rows:
        return
    kinds = [("resumed", "new connections, wrk `Connection: close` (session resumed)"),
             ("full", "full handshakes, 2 x `openssl s_time -new`")]
    servers = [s for s in ORDER if any(k[0] == s for k in rows)]
    table_rows = []
    for kind, label in kinds:
        for server in servers:
            values = rows.get((server, kind))
            if not values:
                continue
            table_rows.append([label, NAMES.get(server, server), f"{statistics.median(v[0] for v in values):,.0f}",
                               f"{statistics.median(v[1] for v in values):,.0f}"])
    print("\n### New TLS connections (median of the rounds)\n")
    print(table(["kind", "server", "connections/s", "server CPU µs per connection"], table_rows))
    ratio_rows = []
    for kind, label in kinds:
        for other in [s for s in servers if s != "swift"]:
            a, b = rows.get(("swift", kind)), rows.get((other, kind))
            if not a or not b:
                continue
            ratio_rows.append([label, NAMES.get(other, other),
                               f"{statistics.median(v[0] for v in a) / statistics.median(v[0] for v in b):.2f}",
                               f"{statistics.median(v[1] for v in b) / statistics.median(v[1] for v in a):.2f}"])
    print("\n### Swift / reference, new TLS connections (above 1 means Swift is better)\n")
    print(table(["kind", "reference", "connections/s", "connections per CPU-second"], ratio_rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--startup", required=True)
    parser.add_argument("--clk-tck", type=int, default=100)
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--handshakes", help="TLS mode: server kind round connections seconds cpu_ticks rows")
    args = parser.parse_args()

    # (server, conns) -> list of per-round measurements
    runs = {}
    with open(args.runs) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            m = parse_wrk(row["wrk_output"])
            cpu_ms = (int(row["cpu_ticks_after"]) - int(row["cpu_ticks_before"])) * 1000.0 / args.clk_tck
            m["cpu_us_per_req"] = cpu_ms * 1000.0 / m["requests"] if m["requests"] else float("nan")
            m["req_per_cpu_ms"] = m["requests"] / cpu_ms if cpu_ms else float("nan")
            m["rss_idle"] = int(row["rss_kb_before"])
            m["rss_loaded"] = int(row["rss_kb_after"])
            m["log_per_req"] = int(row["log_lines"]) / m["requests"] if m["requests"] else float("nan")
            # Share of the machine's CPU used during the run by processes other than this server
            # and run.sh's children (wrk): the idle other server and anything else running.
            window_ticks = int(row["window_ms"]) * args.clk_tck / 1000.0 * args.cpus
            m["other_pct"] = min(100.0, int(row["other_ticks"]) * 100.0 / max(1.0, window_ticks))
            runs.setdefault((row["server"], int(row["conns"])), []).append(m)

    def med(server, conns, key):
        return statistics.median(m[key] for m in runs[(server, conns)])

    servers = [s for s in ORDER if any(k[0] == s for k in runs)]
    conns_list = sorted({k[1] for k in runs})

    rows = []
    problems = []
    for conns in conns_list:
        for server in servers:
            if (server, conns) not in runs:
                continue
            rps = [m["rps"] for m in runs[(server, conns)]]
            spread = (max(rps) - min(rps)) / statistics.median(rps) * 100 if len(rps) > 1 else 0.0
            rows.append([
                NAMES.get(server, server), str(conns),
                f"{med(server, conns, 'rps'):,.0f}", f"{spread:.1f}%",
                fmt_latency(med(server, conns, "p50")), fmt_latency(med(server, conns, "p99")),
                f"{med(server, conns, 'cpu_us_per_req'):.1f}", f"{med(server, conns, 'req_per_cpu_ms'):.1f}",
                fmt_mib(med(server, conns, "rss_idle")), fmt_mib(med(server, conns, "rss_loaded")),
                f"{med(server, conns, 'log_per_req'):.2f}",
                f"{max(m['other_pct'] for m in runs[(server, conns)]):.0f}%",
            ])
            errors = sum(m["errors"] for m in runs[(server, conns)])
            non2xx = sum(m["non2xx"] for m in runs[(server, conns)])
            if errors or non2xx:
                problems.append(f"- {NAMES.get(server, server)} at {conns} connections: "
                                f"{errors} socket errors, {non2xx} non-2xx responses (summed over rounds)")
    rounds = max(len(v) for v in runs.values())
    print(f"### Throughput, latency, CPU and memory (median of {rounds} round{'s' if rounds != 1 else ''})\n")
    print(table(["server", "conns", "req/s", "req/s spread", "p50", "p99", "CPU µs/req",
                 "req/CPU-ms", "idle RSS", "loaded RSS", "log lines/req", "other CPU (max)"], rows))

    # Ratios of the service to each reference. req/CPU-ms (requests served per millisecond of
    # the server's own CPU time) is the steadiest figure on a shared machine.
    for other in [s for s in servers if s != "swift"]:
        if "swift" not in servers:
            break
        ratio_rows = []
        for conns in conns_list:
            if ("swift", conns) in runs and (other, conns) in runs:
                ratio_rows.append([
                    str(conns),
                    f"{med('swift', conns, 'rps') / med(other, conns, 'rps'):.2f}",
                    f"{med('swift', conns, 'p99') / med(other, conns, 'p99'):.2f}",
                    f"{med('swift', conns, 'req_per_cpu_ms') / med(other, conns, 'req_per_cpu_ms'):.2f}",
                ])
        print(f"\n### Swift / {NAMES[other]} (above 1 means Swift is higher)\n")
        print(table(["conns", "req/s", "p99", "req/CPU-ms"], ratio_rows))

    if args.handshakes:
        handshakes(args.handshakes, args.clk_tck)

    starts = {}
    with open(args.startup) as f:
        for line in f:
            if line.strip():
                server, ms = line.split("\t")
                starts.setdefault(server, []).append(float(ms))
    if starts:
        start_rows = [[NAMES.get(s, s), f"{statistics.median(v):.1f} ms", f"{min(v):.1f} ms", f"{max(v):.1f} ms", str(len(v))]
                      for s in ORDER if (v := starts.get(s))]
        print("\n### Start to first 200\n")
        print(table(["server", "median", "min", "max", "starts"], start_rows))

    busiest = max(m["other_pct"] for v in runs.values() for m in v)
    if busiest >= 10:
        print(f"\n**Warning:** processes other than wrk and the server under test used up to {busiest:.0f}% of "
              "the machine's CPU time during a run (column *other CPU*); figures from such runs are disturbed.")

    if problems:
        print("\n### Errors reported by wrk\n")
        print("\n".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
