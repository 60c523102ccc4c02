"""What a server process costs, read from /proc (Linux): resident memory and CPU time.

Both count the process and every descendant (a server that forks workers is measured whole);
CPU adds what the root has already reaped (``cutime + cstime``), so a child that exits
mid-phase does not make a delta negative.
"""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of the tree, in MiB."""
    kib = 0
    for member in tree(pid):
        try:
            with open(f"/proc/{member}/status") as f:
                kib += sum(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except OSError:
            continue
    return kib / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the tree so far, in seconds."""
    ticks = 0
    for member in tree(pid):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
        if member == pid:
            ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def named_cpu_seconds(name: str) -> float:
    """User + system CPU so far of every process called ``name`` (``postgres``: the server and
    its backends), with what each has reaped: a backend that exits meanwhile is still counted,
    in its parent's."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != name:
                    continue
            fields = _stat_fields(int(entry))
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / _TICKS


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"
