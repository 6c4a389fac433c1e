"""Reading import files: bytes in, numbered text lines out, every problem recorded by line.

The reader never holds more than one line in memory, and never even one line longer than
``max_line_bytes``: ``readline(limit)`` stops at the limit, and the rest of an over-long line is
skipped in bounded chunks. Lines are decoded one by one, so non-UTF-8 bytes are an error of
*their* line, and the rest of the file is still checked (all errors are reported at once).
"""
from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_SKIP_CHUNK = 1 << 20


@dataclass
class ErrorLog:
    """Errors of one import: all are counted, the first ``cap`` are kept for display."""

    cap: int
    items: list[dict] = field(default_factory=list)
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, line: int, error: str) -> None:
        # The parser thread and the planning thread both report (see service._in_thread).
        with self._lock:
            self.count += 1
            if len(self.items) < self.cap:
                self.items.append({"line": line, "error": error})

    def __bool__(self) -> bool:
        return self.count > 0


class LineReader:
    """Iterate ``(line_no, text)`` over a plain or gzip-compressed file.

    ``text`` is ``None`` for a line that could not be read (too long, not UTF-8); the reason has
    already gone to ``errors``. Line numbers are 1-based and count every physical line, blank or
    not, so they match what an editor shows (for ``.gz`` files: lines of the decompressed text).
    """

    def __init__(self, path: Path | str, *, max_line_bytes: int, errors: ErrorLog) -> None:
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        self.errors = errors
        self._raw: BinaryIO | None = None

    def bytes_read(self) -> int:
        """How far into the file (on disk, so compressed bytes for .gz) reading has got."""
        if self._raw is None or self._raw.closed:
            return 0
        return self._raw.tell()

    def __iter__(self) -> Iterator[tuple[int, str | None]]:
        from django.conf import settings

        max_unpacked = settings.IMPORT_MAX_UNPACKED_BYTES
        max_ratio = settings.IMPORT_MAX_GZIP_RATIO
        raw = open(self.path, "rb")
        self._raw = raw
        try:
            stream: io.BufferedIOBase = raw  # the file, or a gzip reader over it
            packed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            if packed:
                stream = gzip.GzipFile(fileobj=raw, mode="rb")
            limit = self.max_line_bytes
            line_no = 0
            unpacked = 0
            while True:
                try:
                    chunk = stream.readline(limit + 1)
                except (OSError, EOFError) as exc:  # a corrupt or truncated .gz
                    self.errors.add(line_no + 1, f"cannot read the file: {exc}")
                    return
                if not chunk:
                    return
                line_no += 1
                if packed:
                    # A small .gz must not unpack without end (a "zip bomb"): bound the total and the ratio.
                    unpacked += len(chunk)
                    if unpacked > max_unpacked:
                        self.errors.add(line_no, f"the file unpacks to more than {max_unpacked} bytes "
                                                 "(IMPORT_MAX_UNPACKED_BYTES); split it")
                        return
                    if unpacked > RATIO_FLOOR_BYTES and unpacked > max_ratio * max(raw.tell(), 1):
                        self.errors.add(line_no, f"the file unpacks to more than {max_ratio} times its packed "
                                                 "size (IMPORT_MAX_GZIP_RATIO): refused as a likely zip bomb")
                        return
                if len(chunk) > limit and not chunk.endswith(b"\n"):
                    # Over the limit: skip to the end of the line without keeping it.
                    while not chunk.endswith(b"\n"):
                        chunk = stream.readline(_SKIP_CHUNK)
                        if not chunk:
                            break
                    self.errors.add(line_no, f"line is longer than the limit of {limit} bytes")
                    yield line_no, None
                    continue
                if line_no == 1 and chunk.startswith(_BOM):
                    chunk = chunk[3:]
                try:
                    text = chunk.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self.errors.add(
                        line_no, f"not valid UTF-8: byte 0x{chunk[exc.start]:02x} at position {exc.start + 1}"
                    )
                    yield line_no, None
                    continue
                yield line_no, text
        finally:
            raw.close()


def peek_first_line(path: Path | str, *, max_line_bytes: int) -> tuple[int, str] | None:
    """The first non-blank, readable line (number, text) for format detection, or None."""
    probe = ErrorLog(cap=1)
    for line_no, text in LineReader(path, max_line_bytes=max_line_bytes, errors=probe):
        if text is None:
            return None
        if text.strip():
            return line_no, text
    return None


# The packed/unpacked ratio is judged only past this many unpacked bytes (small files vary a lot).
RATIO_FLOOR_BYTES = 64 * 1024 * 1024


def unpacked_size(path: Path | str, *, cap: int) -> int:
    """How many bytes the file holds once unpacked (a .gz is decompressed as a stream, not trusted by
    its trailer), counting no further than ``cap``: deciding whether an import runs in the request
    reads at most ``cap`` bytes."""
    path = Path(path)
    if not is_gzip(path):
        return path.stat().st_size
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while total < cap:
                block = fh.read(min(1 << 20, cap - total))
                if not block:
                    break
                total += len(block)
    except (OSError, EOFError):
        return total  # corrupt: the import reports it by line
    return total


def is_gzip(path: Path | str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC
