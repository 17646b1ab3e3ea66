"""Shared-memory arrays [B, *shape] between the pool and its workers, held by one file descriptor.

The main process creates one anonymous memory file (``memfd_create`` on Linux; an unlinked temporary
file elsewhere), lays every key's array out in it and hands the descriptor to each worker over its
Unix socket (SCM_RIGHTS). Workers need not be the main process's children or share its
multiprocessing state (no names, no resource tracker); the memory is freed when the last process
holding the descriptor or a mapping closes it.
"""
from __future__ import annotations

import mmap
import os
import socket
import tempfile
from dataclasses import dataclass

import numpy as np

_ALIGN = 64


@dataclass(frozen=True)
class Field:
    """One key's per-env array: shape (without B) and numpy dtype name ("float32", "bool", ...)."""

    shape: tuple[int, ...]
    dtype: str


def _offsets(layout: dict[str, Field], num_envs: int) -> tuple[dict[str, int], int]:
    offsets, end = {}, 0
    for key, f in layout.items():
        offsets[key] = end
        nbytes = num_envs * int(np.prod(f.shape, dtype=np.int64)) * np.dtype(f.dtype).itemsize
        end += -(-max(nbytes, 1) // _ALIGN) * _ALIGN
    return offsets, max(end, _ALIGN)


def _anonymous_file(size: int) -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("gsenv-physics", os.MFD_CLOEXEC)
    else:  # macOS and others: a temporary file, unlinked at once
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="gsenv-physics-", dir=shm)
        os.unlink(path)
    os.ftruncate(fd, size)
    return fd


class SharedArrays:
    """Numpy arrays [B, *shape] per key, all in one shared mapping of the file descriptor ``fd``.

    ``SharedArrays(layout, num_envs)`` creates the memory (main process);
    ``SharedArrays(layout, num_envs, fd=fd)`` maps one received from the creator (a worker).
    """

    def __init__(self, layout: dict[str, Field], num_envs: int, fd: int | None = None):
        offsets, size = _offsets(layout, num_envs)
        self.fd = _anonymous_file(size) if fd is None else fd
        self._map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.arrays = {k: np.ndarray((num_envs, *f.shape), np.dtype(f.dtype), self._map, offsets[k])
                       for k, f in layout.items()}

    def send_fd(self, sock: socket.socket) -> None:
        """Pass the descriptor over a Unix socket (the peer calls :func:`receive_fd`)."""
        socket.send_fds(sock, [b"m"], [self.fd])

    def release(self) -> None:
        """Drop the arrays, the mapping and the descriptor (idempotent)."""
        self.arrays.clear()
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a copy-free view still exists somewhere; the OS frees it at exit
                pass
            self._map = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def receive_fd(sock: socket.socket) -> int:
    """The descriptor a peer sent with :meth:`SharedArrays.send_fd`."""
    _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    if len(fds) != 1:
        raise RuntimeError(f"expected one shared-memory descriptor from the physics pool, got {len(fds)}")
    return fds[0]
