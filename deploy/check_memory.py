#!/usr/bin/env python3
"""Checks that MAX_CONNECTIONS connections fit each shipped manifest's memory limit.

For the Kubernetes base (kubernetes/deployment.yaml), the HTTPS overlay (kubernetes-tls/, its
inline patch over the base) and Compose (compose/compose.yaml):

- the container's memory limit must be set (without one the service keeps its fixed default
  cap of 10,000 connections, which no limit is checked against);
- the connection cap is MAX_CONNECTIONS when the manifest sets it, otherwise the one the
  service derives from that limit at start (``ConnectionBudget`` in
  Sources/ServiceKit/Server/ConnectionBudget.swift, the one place the per-connection figures live; this
  script reads them from there and applies the same formula);
- reserve + cap x the worst per-connection figure (TLS's when the manifest serves HTTPS) must
  leave a quarter of the rest of the limit free: the room for request bodies (up to
  MAX_BODY_BYTES each, which no cap bounds) and allocator slack. The script prints how many
  bodies of MAX_BODY_BYTES that room holds;
- the cap must be at least 1,000 (a limit too small to be worth deploying fails too).

The per-connection figures are measured by Benchmarks/conn-memory.py (README, "Memory per
connection"). Needs PyYAML (checkov and yamllint bring it).
Usage: python3 deploy/check_memory.py   (exits 1 and says why when a manifest does not fit)
"""
import pathlib
import re
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
BUDGET = HERE.parent / "Sources/ServiceKit/Server/ConnectionBudget.swift"
MIB = 1024 * 1024
MINIMUM_CAP = 1000


def budget():
    """The constants of ConnectionBudget.swift: `static let name: UInt64 = <expression>`."""
    text = BUDGET.read_text()
    values = {}
    for name in ("plainBytesPerConnection", "tlsBytesPerConnection", "reserveBytes", "defaultCap"):
        match = re.search(rf"static let {name}(?:: \w+)? = ([0-9_ *]+)\n", text)
        if not match:
            raise SystemExit(f"check_memory.py: no `static let {name} = ...` in {BUDGET}")
        value = 1
        for factor in match.group(1).replace("_", "").split("*"):
            value *= int(factor)
        values[name] = value
    return values


def kubernetes_bytes(quantity):
    """'128Mi', '1Gi', '500M', '134217728' -> bytes (Kubernetes resource quantities)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(quantity).strip())
    if not match:
        raise ValueError(f"not a Kubernetes memory quantity: {quantity!r}")
    unit = {"Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB, "Ti": MIB * MIB, "k": 1000, "M": 1000**2,
            "G": 1000**3, "T": 1000**4, None: 1}[match.group(2)]
    return int(float(match.group(1)) * unit)


def docker_bytes(quantity):
    """'128M', '1g', '512m', '1048576' -> bytes (Docker's units are binary)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmgBKMG]?)", str(quantity).strip())
    if not match:
        raise ValueError(f"not a Docker memory size: {quantity!r}")
    unit = {"": 1, "b": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[match.group(2).lower()]
    return int(float(match.group(1)) * unit)


def derived_cap(limit, per_connection, values):
    """ConnectionBudget.maxConnections(memoryLimit:tls:): three quarters of what the reserve
    leaves, in connections at the worst per-connection figure, between 1 and the default cap."""
    usable = max(0, limit - values["reserveBytes"]) * 3 // 4
    return max(1, min(values["defaultCap"], usable // per_connection))


def check(where, limit, env, values):
    tls = bool(env.get("TLS_CERT_FILE"))
    per_connection = values["tlsBytesPerConnection" if tls else "plainBytesPerConnection"]
    errors = []
    if limit is None:
        return [f"{where}: no memory limit; the connection cap cannot be checked against one"]
    explicit = env.get("MAX_CONNECTIONS")
    cap = int(explicit) if explicit else derived_cap(limit, per_connection, values)
    reserve = values["reserveBytes"]
    worst = reserve + cap * per_connection
    room = limit - worst
    need_room = max(0, limit - reserve) // 4
    body = int(env.get("MAX_BODY_BYTES", 1024 * 1024))
    bodies = max(0, room) // body if body > 0 else float("inf")
    print(f"{where}: limit {limit / MIB:.0f} MiB, {'TLS' if tls else 'plain'}, cap {cap:,}"
          f" ({'MAX_CONNECTIONS' if explicit else 'derived from the limit'}): {reserve / MIB:.0f} MiB reserve"
          f" + {cap:,} x {per_connection / 1024:.0f} KiB = {worst / MIB:.1f} MiB;"
          f" {room / MIB:.1f} MiB left, room for {bodies} bodies of {body:,} bytes")
    if room < need_room:
        errors.append(f"{where}: {cap:,} connections need {worst / MIB:.1f} MiB of a {limit / MIB:.0f} MiB limit,"
                      f" leaving {room / MIB:.1f} MiB < {need_room / MIB:.1f} MiB (a quarter of the limit past"
                      " the reserve): lower MAX_CONNECTIONS or raise the limit")
    if cap < MINIMUM_CAP:
        errors.append(f"{where}: a cap of {cap:,} connections is below {MINIMUM_CAP:,}: raise the memory limit")
    return errors


def container_env(container):
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def main():
    values = budget()
    errors = []

    deployment = yaml.safe_load((HERE / "kubernetes/deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = container_env(container)
    memory = container.get("resources", {}).get("limits", {}).get("memory")
    limit = kubernetes_bytes(memory) if memory else None
    errors += check("kubernetes/deployment.yaml", limit, env, values)

    # The overlay: its inline strategic-merge patches over the base container (env entries
    # merged by name, a memory limit replaced).
    kustomization = yaml.safe_load((HERE / "kubernetes-tls/kustomization.yaml").read_text())
    tls_env, tls_limit = dict(env), limit
    for entry in kustomization.get("patches", []):
        patch = yaml.safe_load(entry.get("patch", "")) or {}
        if patch.get("kind") != "Deployment":
            continue
        for patched in patch.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if patched.get("name") != container["name"]:
                continue
            tls_env.update(container_env(patched))
            memory = patched.get("resources", {}).get("limits", {}).get("memory")
            if memory:
                tls_limit = kubernetes_bytes(memory)
    errors += check("kubernetes-tls/kustomization.yaml", tls_limit, tls_env, values)

    compose = yaml.safe_load((HERE / "compose/compose.yaml").read_text())
    # The file's one service, whatever its name (scripts/rename gives it the service's).
    (service,) = compose["services"].values()
    env = {k: str(v) for k, v in service.get("environment", {}).items()}
    memory = service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
    errors += check("compose/compose.yaml", docker_bytes(memory) if memory else None, env, values)

    for error in errors:
        print("FAIL:", error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
