"""Keep key material out of core dumps: every signserv process that may hold a key calls this.

A core dump of a worker holds the unlocked-key cache, and one of the CLI may hold a token or a
private key being imported. ``RLIMIT_CORE`` 0 stops the kernel writing one; Linux's
``PR_SET_DUMPABLE`` 0 also stops a core pipe handler (systemd-coredump, apport), which ignores
the limit, and keeps other processes of the same user from attaching with ptrace or reading
``/proc/<pid>/mem``. Both survive ``fork``, so gunicorn's workers inherit them from the master.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys

PR_SET_DUMPABLE = 4


def forbid_core_dumps() -> None:
    """Set this process's core size limit to 0 and, on Linux, mark it non-dumpable."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
