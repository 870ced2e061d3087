"""Small read-only stream adapters shared by batch scans, archives and watch mode."""

from __future__ import annotations

import io
import os
from typing import BinaryIO


class _ReadOnly(io.RawIOBase):
    """A readable raw stream whose subclass defines `read`; `readinto` is derived from it."""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class PrefixedStream(_ReadOnly):
    """Bytes already read (a sniffed head) followed by the rest of a stream; no seeking needed.

    The rest is read with `read1` where the stream has it, so a decoder that hits a cut returns
    what it has before raising, not after. `consumed` counts the bytes handed out.
    """

    def __init__(self, prefix: bytes, inner: BinaryIO):
        self._prefix = memoryview(prefix)
        self._inner = inner
        self._read_some = getattr(inner, "read1", inner.read)
        self.consumed = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            data = bytes(self._prefix) + self._inner.read()
            self._prefix = memoryview(b"")
        elif self._prefix:
            data = bytes(self._prefix[:n])
            self._prefix = self._prefix[n:]
            if len(data) < n:
                try:
                    data += self._read_some(n - len(data)) or b""
                except Exception:  # the prefix is handed out first; the next read meets the failure
                    if not data:
                        raise
        else:
            data = self._read_some(n) or b""
        self.consumed += len(data)
        return data


class RangeStream(_ReadOnly):
    """Reads [start, end) of an open file with pread; remembers whether the file fell short."""

    def __init__(self, fd: int, start: int, end: int):
        self.fd, self.pos, self.end = fd, start, end
        self.short = False

    def read(self, n: int = -1) -> bytes:
        want = self.end - self.pos if n is None or n < 0 else min(n, self.end - self.pos)
        if want <= 0:
            return b""
        data = os.pread(self.fd, want, self.pos)
        if not data:
            self.short = True
        self.pos += len(data)
        return data


class SnapshotFile(_ReadOnly):
    """A plain file read up to the size it had when it was opened.

    A log that a live process keeps appending to would otherwise keep a batch scan reading for as
    long as the appends come faster than it parses them (each short read makes one more small
    block); the scan notes that the file changed while it was read. Seeking, `fileno` and `name`
    are the file's, for the binary readers that open the file themselves.
    """

    def __init__(self, inner: BinaryIO, size: int):
        self._inner, self.size = inner, size
        self.name = getattr(inner, "name", None)

    def _capped(self, n: int | None) -> int:
        left = max(0, self.size - self._inner.tell())
        return left if n is None or n < 0 else min(n, left)

    def read(self, n: int | None = -1) -> bytes:
        want = self._capped(n)
        return self._inner.read(want) if want else b""

    def read1(self, n: int = -1) -> bytes:
        want = self._capped(n)
        return self._inner.read1(want) if want else b""

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def fileno(self) -> int:
        return self._inner.fileno()
