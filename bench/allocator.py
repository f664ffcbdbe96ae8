"""Ask glibc to keep freed memory in the process, so that NumPy's large temporaries do not page-fault per call.

glibc's malloc hands blocks above its mmap threshold (128 KiB, raised adaptively up to 32 MiB) straight back to
the kernel when they are freed, and trims the top of the heap above its trim threshold. A reference call
allocates a few such arrays (the padded float64 input, the float64 output, the float32 result), so every call
touches fresh pages, and each first touch is a page fault, a sizeable share of a small layer's time
(docs/speed.md has the figures measured). TensorFlow keeps its own pool of memory and never pays this. ``retain_freed_memory`` raises both thresholds so freed blocks are reused instead.

It changes the whole process's allocator, so the harness calls it only in the processes it owns for measuring
(``make bench``); call it in your own process to time the reference the same way. It is a no-op (returning
None) where the C library has no ``mallopt`` (not glibc).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 256 << 20  # blocks up to this size come from the heap and are reused
TRIM_THRESHOLD_BYTES = 512 << 20  # keep up to this much freed memory at the top of the heap


def retain_freed_memory() -> str | None:
    """Raise glibc's mmap and trim thresholds for this process; a description of the setting, or None if unsupported."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return None
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        return None
    return f"glibc mallopt: M_MMAP_THRESHOLD={MMAP_THRESHOLD_BYTES >> 20} MiB, M_TRIM_THRESHOLD={TRIM_THRESHOLD_BYTES >> 20} MiB"
