"""Resident memory and CPU time of a process and its descendants, read from Linux ``/proc``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

_PROC = Path("/proc")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# Positions in /proc/PID/stat counted after the ")" that ends the command name (proc(5)).
_PARENT_PID, _USER_TICKS, _SYSTEM_TICKS, _RESIDENT_PAGES = 1, 11, 12, 21


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name, or None once the process is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant of it (gunicorn's master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[_PARENT_PID]), []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _sum_over_tree(root: int, value: Callable[[list[str]], int]) -> int:
    """``value`` of each live process of the tree's stat fields, summed."""
    total = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            total += value(fields)
    return total


def tree_rss_bytes(root: int) -> int:
    """Resident set size summed over the tree (shared pages count once per process, as ps does)."""
    return _sum_over_tree(root, lambda fields: int(fields[_RESIDENT_PAGES])) * _PAGE_BYTES


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU time spent so far by the live processes of the tree."""
    ticks = _sum_over_tree(
        root, lambda fields: int(fields[_USER_TICKS]) + int(fields[_SYSTEM_TICKS])
    )
    return ticks / _CLOCK_TICKS
