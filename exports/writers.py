"""Streaming dataset writers: JSONL, Parquet and a Hugging Face ``datasets`` folder.

Rows arrive in item order and leave in bounded buffers, so memory does not grow with the export.
Output is byte-deterministic: no timestamps, explicit Arrow schemas, keys in a fixed order, and the
``datasets`` fingerprint replaced by a hash of the data (``datasets`` would otherwise derive it
from a temporary path).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from itertools import repeat
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_BATCH_ROWS = 5000
JSONL_BATCH_ROWS = 10_000  # a cap for very large chunks
_dumps = orjson.dumps


class SplitWriter:
    """Writes one split (train / validation / test) to every requested output."""

    def __init__(self, *, folder: Path, split: str, schema: pa.Schema, outputs: tuple[str, ...]):
        self.split = split
        self.schema = schema
        self.rows = 0
        self._buffer: list[dict] = []
        self._lines: list[bytes] = []  # JSONL lines not yet written
        self._jsonl = open(folder / f"{split}.jsonl", "wb") if "jsonl" in outputs else None
        self._parquet = (
            pq.ParquetWriter(folder / f"{split}.parquet", schema, compression="zstd") if "parquet" in outputs else None
        )
        self.arrow_path = folder / ".hf-staging" / f"{split}.arrow"
        self._arrow_file = None
        self._arrow = None
        if "hf" in outputs:
            self.arrow_path.parent.mkdir(exist_ok=True)
            self._arrow_file = pa.OSFile(str(self.arrow_path), "wb")
            self._arrow = pa.ipc.new_stream(self._arrow_file, schema)  # datasets' on-disk layout: an IPC stream

    def write(self, rows: list[dict]) -> None:
        self.rows += len(rows)
        if self._jsonl is not None:
            lines = self._lines
            for row in rows:
                lines.append(_dumps(row))
            if len(lines) >= JSONL_BATCH_ROWS:
                self.flush_lines()
        if self._parquet is not None or self._arrow is not None:
            self._buffer.extend(rows)
            if len(self._buffer) >= PARQUET_BATCH_ROWS:
                self._flush()

    def flush_lines(self) -> None:
        """Write the pending JSONL lines in one call (the pipeline calls it after every chunk, so
        at most one chunk's lines wait in memory)."""
        if self._lines:
            assert self._jsonl is not None  # write() collects lines only for a JSONL output
            self._jsonl.write(b"\n".join(self._lines) + b"\n")
            self._lines = []

    def _flush(self) -> None:
        if not self._buffer:
            return
        # Column by column: several times faster than Table.from_pylist on wide text rows.
        rows, self._buffer = self._buffer, []
        get = dict.get
        table = pa.Table.from_arrays(
            [pa.array(list(map(get, rows, repeat(f.name))), type=f.type) for f in self.schema], schema=self.schema
        )
        if self._parquet is not None:
            self._parquet.write_table(table)
        if self._arrow is not None:
            self._arrow.write_table(table)

    def close(self) -> None:
        self._flush()
        if self._jsonl is not None:
            self.flush_lines()
            self._jsonl.close()
        if self._parquet is not None:
            self._parquet.close()
        if self._arrow is not None:
            self._arrow.close()
            assert self._arrow_file is not None  # opened with the stream, in __init__
            self._arrow_file.close()


def write_hf_dataset(*, folder: Path, writers: list[SplitWriter]) -> None:
    """Turn the staged Arrow streams into ``folder/hf`` with ``DatasetDict.save_to_disk``
    (memory-mapped: the rows are not loaded into memory)."""
    import datasets  # heavy; only needed for this output

    datasets.disable_progress_bars()
    staged = {w.split: datasets.Dataset.from_file(str(w.arrow_path)) for w in writers}
    target = folder / "hf"
    datasets.DatasetDict(staged).save_to_disk(str(target))
    del staged
    shutil.rmtree(folder / ".hf-staging")
    for state_path in sorted(target.glob("*/state.json")):
        state = json.loads(state_path.read_text())
        digest = hashlib.sha256()
        for data_file in sorted(state_path.parent.glob("*.arrow")):
            digest.update(file_sha256(data_file).encode())
        state["_fingerprint"] = digest.hexdigest()[:16]
        state_path.write_text(json.dumps(state, indent=2, sort_keys=True))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
