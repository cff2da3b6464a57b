"""The sweep's workers keep freed memory in their heap (verify.sweep.allocator)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: allocate and free a 64 MiB block five times (as a training step's
# temporaries are), then report how many more bytes glibc held in mmapped blocks while each was
# live than before (blocks the interpreter mapped at start-up stay mapped) and the minor page
# faults the five allocations took.
PROBE = """
import ctypes, json, resource, sys
sys.path.insert(0, {root!r})
from verify.sweep.allocator import retain_freed_memory
took = retain_freed_memory() if {retain!r} else None

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
size = 64 * 2**20
mmapped, at_start = [], libc.mallinfo2().hblkhd
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    mmapped.append(libc.mallinfo2().hblkhd - at_start)
    libc.free(block)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(json.dumps({{"took": took, "mmapped": mmapped, "faults": faults}}))
"""


def probe(retain: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), retain=retain)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_large_blocks_come_from_the_heap_and_are_reused():
    before, after = probe(False), probe(True)
    assert after["took"] is True
    # glibc's default serves a 64 MiB block (above its largest mmap threshold, 32 MiB) by mmap ...
    assert all(size >= 64 * 2**20 for size in before["mmapped"])
    # ... and with the settings from the heap, so that a freed block is there for the next one.
    assert after["mmapped"] == [0] * 5
    # Five fresh mappings fault every page in each time (4 KiB pages: 16,384 per block, fewer with
    # transparent huge pages); the reused heap block faults its pages in once.
    assert after["faults"] < 0.5 * before["faults"]
