"""Keep freed memory in the worker's heap instead of handing it back to the kernel (glibc only).

glibc's ``malloc`` serves every block above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and returns it with ``munmap`` when freed, and it trims the heap's top when more than
the trim threshold is free. A training step allocates the same large temporaries every time (the
deep trainer's batched activations and gradients, MMR's pairwise feature differences: tens of
MiB per step), so each step faulted fresh zeroed pages in and gave them back: on the deep
strength-grid tasks the kernel's side of that took 41 of 95 seconds (bench/README.md, "Memory
allocator"). With mmap off and the trim threshold high, a freed block is reused by the next step;
the numbers computed are the same bits (the blocks keep their alignment), the process keeps its
peak heap (measured 1.07 GB against 0.86 GB on those tasks).
"""
from __future__ import annotations

import ctypes
import functools
import sys

# mallopt(3) parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# Free heap above this stays with the process until it exits (mallopt takes an int).
TRIM_THRESHOLD = 2**30


@functools.cache
def retain_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory for reuse, in this process and the
    processes it forks (which inherit the settings, and this answer). Returns whether the
    allocator took the settings (False off glibc, where nothing is changed); set once per process."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
