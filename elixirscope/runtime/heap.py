"""``trim_heap``: give the memory freed after a burst back to the operating system.

glibc's malloc keeps freed memory in its arenas; after a burst of large frames a
long-running actor would hold tens of megabytes it no longer uses. ``malloc_trim``
returns it. Elsewhere (musl, macOS) this does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["trim_heap"]

_malloc_trim = None
try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    _malloc_trim.argtypes = [ctypes.c_size_t]
    _malloc_trim.restype = ctypes.c_int
except (OSError, AttributeError):
    pass


def trim_heap() -> bool:
    """Release free heap memory to the OS; True if anything was released."""
    if _malloc_trim is None:
        return False
    return bool(_malloc_trim(0))
