"""Child processes that end with their parent, so a killed build (``kill -9``) leaves no orphan writing files.

A process-pool worker blocked on its task queue never notices that the parent is gone (the queue's pipe stays
open: every worker holds both ends), and a corpus build started by ``fit`` keeps synthesising after ``fit`` is
killed. :func:`die_with_parent` fixes both: on Linux the kernel sends SIGKILL to the child the moment its parent
exits (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls ``os.getppid()``. Loops that write files also
call :func:`parent_alive` between items, so they stop cleanly either way.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.5  # parent check interval of the fallback thread


def parent_alive(parent_pid: int) -> bool:
    """True while ``parent_pid`` is still this process's parent (an orphan is re-parented, to init or a reaper)."""
    return os.getppid() == parent_pid


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` (its parent) exits; exit now if it already has.

    Call it first thing in a child process. Linux: the kernel kills this process (SIGKILL) when the parent dies.
    Other systems: a daemon thread checks every ``POLL_S`` seconds and calls ``os._exit(1)``.
    """
    if not (sys.platform.startswith("linux") and _set_pdeathsig(signal.SIGKILL)):
        threading.Thread(target=_watch, args=(parent_pid,), name="die-with-parent", daemon=True).start()
    if not parent_alive(parent_pid):  # the parent died before the signal was armed
        os._exit(1)


def _set_pdeathsig(sig: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while parent_alive(parent_pid):
        time.sleep(POLL_S)
    os._exit(1)
