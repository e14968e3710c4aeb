"""Memory: what large reads and writes free is given back to the operating system, so a server that once read
a large table does not stay at its peak (DESIGN §8 memory bar).
"""

from __future__ import annotations


def _return_arrow_memory_to_the_system() -> None:
    """Let pandas' Arrow-backed string columns allocate through the C allocator.

    Arrow's default pool (mimalloc) keeps the pages of freed columns for reuse, so a server that once
    read a large table stays at its peak; with the system pool :func:`release_freed_memory` returns them.
    """
    try:
        import pyarrow
    except ImportError:  # strings are Python objects then: nothing to change
        return
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


_return_arrow_memory_to_the_system()


def release_freed_memory() -> None:
    """Give memory freed after a large read back to the operating system (glibc ``malloc_trim``).

    Rows are fetched as Python objects before they become columns; without this the server's resident
    size stays at its peak long after those objects are gone (DESIGN §8 memory bar).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
