#!/usr/bin/env python3
"""How much CPU did everything else on the machine use during a benchmark run?

    procstat.py snapshot FILE                 # before the run
    procstat.py other FILE --exclude PID...   # after it: prints clock ticks used meanwhile

Sums utime+stime+cutime+cstime (fields 14-17 of /proc/PID/stat) over every process, except the
excluded ones (the server under test and run.sh, whose children include wrk) and this script.
A process that exited during the run is counted through its parent's cutime/cstime, minus what
it had used before the snapshot; the result is an estimate, good enough to flag a disturbed run.
"""

import json
import os
import sys


def read_all():
    """pid -> [starttime, ticks] for every process, except this one."""
    me = os.getpid()
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        # fields[0] is field 3 (state): utime..cstime are fields 14-17, starttime is 22.
        out[name] = [int(fields[19]), sum(int(x) for x in fields[11:15])]
    return out


def main():
    command, path = sys.argv[1], sys.argv[2]
    if command == "snapshot":
        with open(path, "w") as f:
            json.dump(read_all(), f)
        return 0
    exclude = set(sys.argv[sys.argv.index("--exclude") + 1:]) if "--exclude" in sys.argv else set()
    exclude.add(str(os.getppid()))
    with open(path) as f:
        before = json.load(f)
    after = read_all()
    total = 0
    for pid, (start, ticks) in after.items():
        if pid in exclude:
            continue
        old = before.get(pid)
        total += ticks - old[1] if old and old[0] == start else ticks
    for pid, (start, ticks) in before.items():
        if pid not in exclude and (pid not in after or after[pid][0] != start):
            total -= ticks  # its total now sits in its parent's cutime/cstime
    print(max(0, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
