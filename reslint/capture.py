"""What the user's model code prints, caught at the file-descriptor level.

Model code prints at import, in `__init__` and in `forward` ("number of parameters: 0.46M"), and
libraries emit warnings, some from C. None of it may reach reslint's stdout, where `--format json`
and `--format sarif` must be the report alone. File descriptors 1 and 2 are pointed at one temporary
file (so C-level writes are caught too); the text is kept per target in `TargetResult.output`, and
the CLI shows it on stderr under --verbose or when the target errored.
"""

from __future__ import annotations

import os
import sys
import tempfile

KEEP = 20_000  # characters kept from each end of a long output


def flush_streams() -> None:
    """Flush Python's and C's buffered stdout/stderr, so what was printed is in the file (or the terminal)."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    libc = _libc()
    if libc is not None:
        try:
            libc.fflush(None)
        except (OSError, AttributeError):
            pass


def _libc():
    if sys.platform == "win32" or "ctypes" not in sys.modules:  # torch has imported ctypes when it matters
        return None
    import ctypes

    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def shorten(text: str) -> str:
    """A long output keeps its beginning and its end: what a model printed first and last is what matters."""
    if len(text) <= 2 * KEEP:
        return text
    hidden = len(text) - 2 * KEEP
    return f"{text[:KEEP]}\n[... {hidden} characters not shown ...]\n{text[-KEEP:]}"


def read_file(fd: int, start: int = 0, end: int | None = None) -> str:
    """Text written to the capture file between two offsets (pread: the shared offset is not moved)."""
    if end is None:
        end = os.fstat(fd).st_size
    if end <= start:
        return ""
    size = end - start
    # Read at most both kept ends, not a gigabyte of spam.
    limit = 8 * KEEP
    if size <= 2 * limit:
        data = os.pread(fd, size, start)
    else:
        head, tail = os.pread(fd, limit, start), os.pread(fd, limit, end - limit)
        data = head + f"\n[... {size - 2 * limit} bytes not shown ...]\n".encode() + tail
    return shorten(data.decode("utf-8", errors="replace"))


class Capture:
    """Points fds 1 and 2 at a temporary file; `take()` returns what was written since the last take.

    `restore()` puts the original descriptors back (the in-process path); a worker process that ends
    with os._exit never needs to.
    """

    def __init__(self, fd: int | None = None) -> None:
        self.file = tempfile.TemporaryFile() if fd is None else None
        self.fd = self.file.fileno() if self.file is not None else fd
        self.saved: tuple[int, int] | None = None
        self.streams = (sys.stdout, sys.stderr)
        self.mark = 0

    def start(self, keep_originals: bool = True) -> "Capture":
        flush_streams()
        if keep_originals:
            self.saved = (os.dup(1), os.dup(2))
        self.mark = os.lseek(self.fd, 0, os.SEEK_END)
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)
        # Fresh Python streams on the redirected descriptors: the old ones may hold a lock or buffered
        # text from before (after a fork, another thread's); they are kept referenced, never flushed.
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
        return self

    def take(self) -> str:
        flush_streams()
        end = os.fstat(self.fd).st_size
        text = read_file(self.fd, self.mark, end)
        self.mark = end
        return text

    def restore(self) -> None:
        flush_streams()
        if self.saved is not None:
            os.dup2(self.saved[0], 1)
            os.dup2(self.saved[1], 2)
            os.close(self.saved[0])
            os.close(self.saved[1])
            self.saved = None
        sys.stdout, sys.stderr = self.streams
        if self.file is not None:
            self.file.close()
