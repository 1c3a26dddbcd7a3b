#!/usr/bin/env python3
"""Checks the numbers in deploy/ that must agree with each other.

- Kubernetes: terminationGracePeriodSeconds >= SHUTDOWN_DELAY + DRAIN_TIMEOUT + 2, and the
  container port named http equals PORT.
- Compose: stop_grace_period >= SHUTDOWN_DELAY + DRAIN_TIMEOUT + 2, and the published
  container port equals PORT.

The service is gone by SHUTDOWN_DELAY + DRAIN_TIMEOUT + 1 s in every case; one more second
keeps the SIGKILL from landing first. Needs PyYAML (checkov and yamllint bring it).
Usage: python3 deploy/check_timing.py   (exits 1 and says why on a mismatch)
"""
import pathlib
import re
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1, "m": 60, "h": 3600}


def seconds(value):
    """'5s', '1m30s', '250ms', '0' -> seconds (the service's Go-style duration syntax)."""
    text = str(value).strip()
    if text == "0":
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * UNITS[u] for n, u in parts)


def check(where, grace, env, port):
    need = seconds(env.get("SHUTDOWN_DELAY", "0s")) + seconds(env.get("DRAIN_TIMEOUT", "25s")) + 2
    errors = []
    if grace < need:
        errors.append(f"{where}: grace period {grace:g}s < SHUTDOWN_DELAY + DRAIN_TIMEOUT + 2"
                      f" = {need:g}s")
    if str(env.get("PORT", "8080")) != str(port):
        errors.append(f"{where}: container port {port} != PORT {env.get('PORT', '8080')}")
    print(f"{where}: grace {grace:g}s, needs >= {need:g}s; port {port}")
    return errors


def main():
    errors = []

    deployment = yaml.safe_load((HERE / "kubernetes/deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    port = next(p["containerPort"] for p in container["ports"] if p.get("name") == "http")
    errors += check("kubernetes/deployment.yaml", pod["terminationGracePeriodSeconds"], env, port)

    compose = yaml.safe_load((HERE / "compose/compose.yaml").read_text())
    # The file's one service, whatever its name (scripts/rename gives it the service's).
    (service,) = compose["services"].values()
    env = {k: str(v) for k, v in service.get("environment", {}).items()}
    port = str(service["ports"][0]).split(":")[-1]
    errors += check("compose/compose.yaml", seconds(service["stop_grace_period"]), env, port)

    for error in errors:
        print("FAIL:", error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
