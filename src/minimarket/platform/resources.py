"""Memory limit and usage as the kernel sees them (cgroup v2, cgroup v1, or the whole machine)."""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1 = Path("/sys/fs/cgroup/memory")
_UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a huge number


def _read_int(path: Path) -> int | None:
    try:
        raw = path.read_text().strip()
    except OSError:
        return None
    return int(raw) if raw.isdigit() else None


def cgroup_limit_bytes() -> int | None:
    for path in (CGROUP_V2 / "memory.max", CGROUP_V1 / "memory.limit_in_bytes"):
        value = _read_int(path)
        if value is not None and value < _UNLIMITED:
            return value
    return None


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_limit_bytes() -> int:
    return cgroup_limit_bytes() or machine_memory_bytes()


def process_rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def memory_usage_bytes() -> int:
    """What counts against the limit: the cgroup's working set when it has a limit, else this process.

    The working set leaves out inactive page cache, which the kernel reclaims before it
    kills anything (the same measure the kubelet uses); usage with cache would cry wolf.
    """
    if cgroup_limit_bytes() is not None:
        sources = ((CGROUP_V2 / "memory.current", CGROUP_V2 / "memory.stat", "inactive_file"),
                   (CGROUP_V1 / "memory.usage_in_bytes", CGROUP_V1 / "memory.stat", "total_inactive_file"))
        for current, stat, inactive_key in sources:
            value = _read_int(current)
            if value is not None:
                return max(value - _stat(stat, inactive_key), 0)
    return process_rss_bytes()
