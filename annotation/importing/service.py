"""The import service: one file → one ``ImportBatch``, all or nothing.

Pass 1 streams the whole file, parses and validates every record (including the checks that need
the database: an external id already used by a different item) and collects *all* errors. If
there is any, the batch ends FAILED and nothing is written. Pass 2 streams the file again and
writes it in chunks inside one transaction, with the project row locked (``select_for_update``)
so that two imports into one project serialise; it repeats the database checks under the lock,
so a race with another import cannot slip a duplicate or a clashing id through.

Memory does not grow with the file: records are handled ``IMPORT_BATCH_SIZE`` at a time. The only
state kept across chunks is the set of content hashes and external ids seen so far in the file
(needed to skip duplicates inside the file): about 100 bytes per item, plus about 100 bytes per
named rater's label (``_Raters``: a rater is added to an item once).

``import_file`` itself is not one ``@transaction.atomic`` block on purpose: a FAILED batch, with
its error list, must be stored while everything the file would have added is not.

SQLite (the embedded default) is the one declared exception to "pass 2 is one transaction": it
has a single write lock for the whole database, and a pass 2 holding it for the whole file would
make every annotator's submit wait behind it. There pass 2 commits each chunk in its own short
transaction (retried on a lock conflict), while a file lock beside the database serialises the
imports into one project. Validation errors are all found in pass 1, before anything is written,
so a bad file still stores nothing; what differs is an interruption in pass 2 (a killed worker,
a database that stays locked): the chunks already committed stay, and running the batch again
(automatic for background batches) skips them by content hash and finishes the rest, adding
nothing twice. Counts are then taken from the rows that carry the batch's id.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from annotation.dbretry import is_lock_error, retry_on_lock
from annotation.importing.detect import FORMATS, DetectError, detect_format
from annotation.importing.formats import PARSERS, CategoryMap, ParseContext, Rating, Record, rater_columns
from annotation.importing.reader import ErrorLog, LineReader, unpacked_size
from annotation.importing.writer import ChunkWriter, content_hash, stored_ratings
from annotation.jobs import claim, claimant_is_gone, hand_back_abandoned, worker_identity
from annotation.models import Annotation, ImportBatch, Item, Project, Response
from annotation.readahead import read_ahead

logger = logging.getLogger(__name__)

_PROGRESS_EVERY_S = 0.5


class _Abort(Exception):
    """Pass 2 found errors (a concurrent import got there first): roll everything back."""


class ImportInterrupted(Exception):
    """A background batch stopped on a transient database error (a lock conflict that outlived the
    retries). The batch was put back to PENDING with its file kept; the task runs it again later."""


def commits_per_chunk() -> bool:
    """Whether pass 2 commits chunk by chunk (SQLite: see the module docstring) or as one transaction."""
    return connection.vendor == "sqlite"


def import_file(
    *,
    project: Project,
    path: Path | str,
    source_name: str,
    fmt: str = "auto",
    user=None,
    background: bool | None = None,
    options: dict | None = None,
) -> ImportBatch:
    """Import one file into ``project`` and return its ``ImportBatch``.

    Small files run now and come back DONE (counts filled) or FAILED (``errors`` by line,
    ``error_count``, nothing stored). Files over ``IMPORT_BACKGROUND_THRESHOLD`` bytes, or any file
    with ``background=True``, are copied to ``IMPORT_UPLOAD_DIR/<batch id>/`` (the caller's file
    may be a temporary upload), come back PENDING, and ``import_run_task`` is enqueued after the
    surrounding transaction commits. Raises ``ValueError`` for an unknown format name.

    ``options``: ``{"mapping": {...}}``, the column mapping of ``csv-raters`` (one label column per
    rater; see ``annotation.importing.formats.csv_raters``). With a mapping, ``fmt="auto"`` means
    ``csv-raters``; a bad mapping, or ``csv-raters`` without one, is a ``ValueError`` (nothing is
    recorded).
    """
    if fmt not in ("auto", *FORMATS):
        raise ValueError(f"unknown import format {fmt!r}; use one of: auto, {', '.join(FORMATS)}")
    options = dict(options or {})
    if set(options) - {"mapping"}:
        raise ValueError(f"unknown import option(s) {sorted(set(options) - {'mapping'})}; the one option is mapping")
    if options.get("mapping") is not None:
        if fmt not in ("auto", "csv-raters"):
            raise ValueError(f"a column mapping is for the csv-raters format, not {fmt}")
        rater_columns(options["mapping"])  # raises ValueError naming the problem
        fmt = "csv-raters"
    elif fmt == "csv-raters":
        raise ValueError("the csv-raters format needs a column mapping (which column is the prompt, which are raters)")
    path = Path(path)
    size = path.stat().st_size
    if background is None:
        # The unpacked size decides: a small .gz can hold far more than the threshold.
        threshold = settings.IMPORT_BACKGROUND_THRESHOLD
        background = unpacked_size(path, cap=threshold + 1) > threshold
    batch = ImportBatch.objects.create(
        project=project,
        created_by=user,
        source_name=source_name[:500],
        requested_format=fmt,
        size_bytes=size,
        background=background,
        options=options,
        status=ImportBatch.Status.PENDING if background else ImportBatch.Status.RUNNING,
        started_at=None if background else timezone.now(),
        # A foreground import records who runs it (this web or command process) and keeps a
        # heartbeat, so one whose process died is found and ended (import_batches_reap).
        claimed_by="" if background else worker_identity(),
        heartbeat_at=None if background else timezone.now(),
    )
    if not background:
        _run(batch, path, report_progress=True)
        return batch

    from annotation.tasks import import_run_task  # the task module imports this one

    target_dir = Path(settings.IMPORT_UPLOAD_DIR) / str(batch.pk)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / _safe_name(source_name)
    shutil.copyfile(path, target)
    batch.stored_path = str(target)
    batch.save(update_fields=["stored_path"])
    import_run_task.delay_on_commit(batch.pk)
    return batch


def import_batch_run(*, batch_id: int, requeue_on_lock: bool = False) -> ImportBatch | None:
    """Run a stored (background) batch. Idempotent: claims the batch with a conditional UPDATE
    (pending → running) and does nothing if someone else already did; returns None then.
    The uploaded copy is removed when the batch ends, DONE or FAILED.

    ``requeue_on_lock=True`` (the Celery task, while it has retries left): a lock conflict that
    outlived the per-statement retries puts the batch back to PENDING, keeps its file and raises
    :class:`ImportInterrupted` for the task to retry later, instead of ending it FAILED."""
    try:
        claimed = claim(
            model=ImportBatch, pk=batch_id, pending=ImportBatch.Status.PENDING, running=ImportBatch.Status.RUNNING
        )
    except DatabaseError as exc:
        # SQLite: another writer held the database past the busy timeout and every retry. The batch
        # is still PENDING, which no resumer looks at: the task must retry, or it stays there.
        if requeue_on_lock and is_lock_error(exc):
            logger.warning("import batch %s could not be claimed (lock conflict); queued again: %s", batch_id, exc)
            raise ImportInterrupted(f"import batch {batch_id}: {exc}") from exc
        raise
    if not claimed:
        return None
    batch = ImportBatch.objects.select_related("project").get(pk=batch_id)
    ended = True
    try:
        _run(batch, Path(batch.stored_path), report_progress=True, requeue_on_lock=requeue_on_lock)
    except ImportInterrupted:
        ended = False
        raise
    finally:
        if ended:
            shutil.rmtree(Path(batch.stored_path).parent, ignore_errors=True)
    return batch


def import_batches_resume(*, stale_after_s: int | None = None) -> list[int]:
    """Hand abandoned background batches back to the queue; returns their ids.

    A batch is abandoned when it is RUNNING and the worker process that claimed it is gone (see
    ``annotation.jobs``). Its write pass was one transaction, which died with the process, so
    nothing of it is stored: it goes back to PENDING and is enqueued again. A rerun cannot
    duplicate anything (items are deduplicated by content), and the conditional claim makes sure
    only one worker runs it. Called when a worker starts.
    """
    from annotation.tasks import import_run_task

    import_batches_reap()
    return hand_back_abandoned(
        queryset=ImportBatch.objects.filter(background=True),
        running=ImportBatch.Status.RUNNING,
        pending=ImportBatch.Status.PENDING,
        enqueue=import_run_task.delay,
        stale_after=timedelta(seconds=stale_after_s) if stale_after_s is not None else None,
        reset={"bytes_read": 0, "records_read": 0},
    )


def import_batches_reap(*, batch_ids: list[int] | None = None, stale_after_s: int | None = None) -> list[int]:
    """End foreground imports whose process died (a web worker killed mid-request) as FAILED, with
    what was stored said plainly; returns their ids. Called when a worker starts and whenever an
    import's page or API is read, so a dead import stops looking "running" the next time anyone looks.
    Background imports are not touched: ``import_batches_resume`` hands those back to the queue."""
    stale_after = timedelta(seconds=stale_after_s if stale_after_s is not None else settings.JOB_STALE_SECONDS)
    rows = ImportBatch.objects.filter(background=False, status=ImportBatch.Status.RUNNING)
    if batch_ids is not None:
        rows = rows.filter(pk__in=batch_ids)
    ended = []
    for pk, claimed_by, heartbeat_at, started_at in rows.values_list("pk", "claimed_by", "heartbeat_at", "started_at"):
        if claimed_by:
            gone = claimant_is_gone(claimed_by, heartbeat_at, stale_after=stale_after)
        else:  # from before imports recorded their claimant
            gone = started_at is None or started_at < timezone.now() - stale_after
        if not gone:
            continue
        kept = Item.objects.filter(import_batch_id=pk).count()
        message = ("the process running this import stopped before it finished; "
                   + (f"{kept} items of the file were stored; importing it again adds the rest and nothing twice"
                      if kept else "nothing was stored; import the file again"))
        updated = ImportBatch.objects.filter(pk=pk, status=ImportBatch.Status.RUNNING, claimed_by=claimed_by).update(
            status=ImportBatch.Status.FAILED, errors=[{"line": 0, "error": message}], error_count=1,
            finished_at=timezone.now(),
        )
        if updated:
            logger.warning("import batch %s was abandoned by %s; ended as failed", pk, claimed_by or "?")
            ended.append(pk)
    return ended


# --- The two passes --------------------------------------------------------------------------------


def _run(batch: ImportBatch, path: Path, *, report_progress: bool, requeue_on_lock: bool = False) -> None:
    errors = ErrorLog(cap=settings.IMPORT_MAX_ERRORS)
    project = batch.project
    try:
        batch.sha256 = _sha256(path)
        if batch.requested_format == ImportBatch.Format.AUTO:
            try:
                fmt = detect_format(path, source_name=batch.source_name, max_line_bytes=settings.IMPORT_MAX_LINE_BYTES)
            except DetectError as exc:
                errors.add(exc.line, str(exc))
                _finish_failed(batch, errors, records_read=0)
                return
        else:
            fmt = batch.requested_format
        batch.detected_format = fmt
        categories = CategoryMap.for_version(project.taxonomy_version)

        # Pass 1: validate everything, write nothing.
        known = _Known(project.pk)
        progress = _Progress(batch, enabled=report_progress, pass_no=1)
        stats = _walk(batch, path, fmt, categories, errors, known=known, writer=None, progress=progress)
        if errors:
            _finish_failed(batch, errors, records_read=stats.records_read)
            return
        if stats.records_read == 0:
            errors.add(1, "the file has no records")
            _finish_failed(batch, errors, records_read=0)
            return

        # Pass 2: write with the project locked against concurrent imports; all or nothing in one
        # transaction, or chunk by chunk on SQLite (see the module docstring).
        progress = _Progress(batch, enabled=report_progress, pass_no=2)
        writer = ChunkWriter(
            batch=batch, taxonomy_version_id=project.taxonomy_version_id, source_file=batch.source_name,
            now=timezone.now(),
        )
        try:
            if commits_per_chunk():
                with _project_import_lock(project.pk):
                    known.catch_up()
                    stats = _walk(
                        batch, path, fmt, categories, errors, known=known, writer=writer, progress=progress,
                        commit_each_chunk=True,
                    )
                    progress.close()
                    if errors:
                        raise _Abort
                    _finish_done(batch, stats, writer, counted_from_rows=True)
            else:
                with transaction.atomic():
                    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").get()
                    known.catch_up()
                    stats = _walk(batch, path, fmt, categories, errors, known=known, writer=writer, progress=progress)
                    progress.close()
                    if errors:
                        raise _Abort
                    _finish_done(batch, stats, writer, counted_from_rows=False)
        except _Abort:
            if commits_per_chunk() and writer.items:
                errors.add(0, f"{writer.items} items of this file were stored before these errors were found; "
                              "importing the corrected file adds the rest and nothing twice")
            _finish_failed(batch, errors, records_read=stats.records_read)
        except IntegrityError as exc:
            # The unique constraints caught what the dedup could not see (an item added to the
            # project outside an import, during this one). Everything was rolled back.
            logger.warning("import batch %s hit a constraint: %s", batch.pk, exc)
            errors.add(0, "the project changed during the import (an item with the same content or id, or a rater's "
                          "label for one of its items, was added meanwhile); nothing was stored, import the file "
                          f"again ({exc.__class__.__name__})")
            _finish_failed(batch, errors, records_read=0)
        finally:
            progress.close()
    except Exception as exc:  # a poisoned job must end FAILED, not crash-loop or stay RUNNING
        if requeue_on_lock and is_lock_error(exc):
            logger.warning("import batch %s interrupted by a lock conflict; queued again: %s", batch.pk, exc)
            _hand_back(batch)
            raise ImportInterrupted(f"import batch {batch.pk}: {exc}") from exc
        logger.exception("import batch %s failed", batch.pk)
        errors.add(0, f"internal error: {type(exc).__name__}: {exc}")
        if commits_per_chunk() and Item.objects.filter(import_batch=batch).exists():
            errors.add(0, "part of the file was stored before the error; importing the same file again adds the "
                          "rest and nothing twice")
        _finish_failed(batch, errors, records_read=batch.records_read)


def _finish_done(batch: ImportBatch, stats: _Stats, writer: ChunkWriter, *, counted_from_rows: bool) -> None:
    """Mark the batch DONE with its counts. ``counted_from_rows``: count what carries the batch's
    id (chunked pass 2, where an earlier interrupted run may have stored part of the file, which
    this run then skipped as already present); otherwise the writer's own counts."""
    items, responses, annotations = writer.items, writer.responses, writer.annotations
    if counted_from_rows:
        items = Item.objects.filter(import_batch=batch).count()
        responses = Response.objects.filter(item__import_batch=batch).count()
        annotations = Annotation.objects.filter(import_batch=batch).count()
    batch.status = ImportBatch.Status.DONE
    batch.records_read = stats.records_read
    batch.bytes_read = batch.size_bytes
    batch.items_created = items
    # Items an interrupted earlier run of this batch stored were skipped as "already present".
    resumed = items - writer.items
    batch.items_skipped = stats.skipped - resumed
    batch.skipped_detail = {
        "duplicates_in_file": stats.duplicates_in_file,
        "already_in_project": stats.already_present - resumed,
        "ignored": stats.ignored,
    }
    batch.responses_created = responses
    batch.annotations_created = annotations
    batch.finished_at = timezone.now()
    retry_on_lock(batch.save)(update_fields=[
        "status", "records_read", "bytes_read", "items_created", "items_skipped", "skipped_detail", "responses_created",
        "annotations_created", "finished_at", "detected_format", "sha256",
    ])


def _hand_back(batch: ImportBatch) -> None:
    """Put an interrupted background batch back to PENDING (its file stays) for the task's retry."""
    retry_on_lock(
        ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.RUNNING).update
    )(status=ImportBatch.Status.PENDING, claimed_by="", bytes_read=0, records_read=0)


@contextlib.contextmanager
def _project_import_lock(project_id: int) -> Iterator[None]:
    """Serialise the chunked pass 2 of imports into one project (SQLite only: the database is a local
    file, so every process that writes it is on this host). An exclusive ``flock`` on a file beside
    the database; the kernel releases it when the holder dies, so a killed worker never leaves it set."""
    name = str(connection.settings_dict["NAME"])
    if name.startswith("file:") or name == ":memory:":  # an in-memory test database: one process
        lock_path = Path(tempfile.gettempdir()) / f"tribunal-{hashlib.sha1(name.encode()).hexdigest()[:12]}-{project_id}.lock"
    else:
        db_path = Path(name)
        lock_path = db_path.with_name(f"{db_path.name}.import-project-{project_id}.lock")
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Stats:
    __slots__ = ("records_read", "skipped", "duplicates_in_file", "already_present", "ignored")

    def __init__(self) -> None:
        self.records_read = 0
        self.skipped = 0
        self.duplicates_in_file = 0  # same content as an earlier record of this file
        self.already_present = 0  # same content as an item the project already had
        self.ignored = 0  # deliberately not imported by the format (e.g. Aegis REDACTED prompts)


def _walk(
    batch, path, fmt, categories, errors: ErrorLog, *, known: _Known, writer: ChunkWriter | None, progress,
    commit_each_chunk: bool = False,
) -> _Stats:
    reader = LineReader(path, max_line_bytes=settings.IMPORT_MAX_LINE_BYTES, errors=errors)
    ctx = ParseContext(errors=errors, categories=categories, max_line_bytes=settings.IMPORT_MAX_LINE_BYTES,
                       options=batch.options or {})
    records = PARSERS[fmt](reader, ctx)
    seen_hashes: set[str] = set()
    seen_ids: dict[str, str] = {}
    raters = _Raters(batch.project_id)
    stats = _Stats()
    write = writer.write if writer is not None else None
    write_attach = writer.attach if writer is not None else None
    if writer is not None and commit_each_chunk:
        write = _yielding_writer(writer)
        write_attach = retry_on_lock(transaction.atomic(writer.attach))
    # closing(): the parser thread is stopped and joined here, in this thread, on every path
    # (an exception in a write included), not later by the garbage collector in some other thread.
    # The parser (pure Python, no database) runs two chunks ahead on its own thread while this
    # thread waits for the database; only this thread touches the database.
    mode = Project.objects.filter(pk=batch.project_id).values_list("mode", flat=True).get()
    chunks = _parsed_chunks(reader, records, ctx, settings.IMPORT_BATCH_SIZE)
    with contextlib.closing(read_ahead(chunks, depth=2, name="import-parser")) as parsed:
        for chunk, hashes, position, records_read in parsed:
            fits = [mode_fit_error(mode, len(record.responses)) for record in chunk]
            for record, problem in zip(chunk, fits):
                if problem:
                    errors.add(record.line, problem)
            chunk, hashes = [r for r, p in zip(chunk, fits) if not p], [h for h, p in zip(hashes, fits) if not p]
            planned, (in_file, present), attach = _plan(
                known, chunk, hashes, seen_hashes, seen_ids, errors, raters=raters, from_db=writer is None
            )
            stats.skipped += in_file + present
            stats.duplicates_in_file += in_file
            stats.already_present += present
            if write is not None and not errors:
                write(planned)
                if attach and write_attach is not None:
                    write_attach(attach)
            progress.update(position, records_read)
    stats.records_read = ctx.records_read
    stats.skipped += ctx.ignored
    stats.ignored = ctx.ignored
    return stats


def mode_fit_error(mode: str, responses: int) -> str:
    """Why an item with ``responses`` responses cannot be judged in a project of ``mode`` ("" when it can).

    A pairwise project compares exactly two responses: the workbench shows one pair, so a third response
    would never be seen and annotators would compare different pairs (split such items into pairs, or
    import them into a ranking project). Ranking needs at least two; safety, and ranking + safety (whose
    safety labels still apply to a lone response), take any number.

    >>> mode_fit_error("pairwise", 3), mode_fit_error("ranking", 1), mode_fit_error("safety", 1)
    ('a pairwise project compares exactly two responses and this item has 3: split it into pairs, or import it into a ranking project', 'a ranking project needs at least two responses to compare and this item has 1', '')
    """
    if mode == Project.Mode.PAIRWISE and responses != 2:
        if responses > 2:
            return (f"a pairwise project compares exactly two responses and this item has {responses}: "
                    "split it into pairs, or import it into a ranking project")
        return f"a pairwise project compares exactly two responses and this item has {responses}"
    if mode == Project.Mode.RANKING and responses < 2:  # ranking + safety still labels a lone response
        return f"a ranking project needs at least two responses to compare and this item has {responses}"
    return ""


# SQLite (chunked pass 2): how many records one write transaction holds the database's only write
# lock for, and how long the import then lets go of it. SQLite's lock is not fair: a web request
# waiting for it polls every <= 100 ms, and an importer that begins its next transaction the
# moment it commits wins nearly every time, so without the pause the annotators wait for the
# whole import (measured: 16 s stalls at 20 annotators). 500 records take ~0.2-0.8 s to write.
SQLITE_WRITE_RECORDS = 500
SQLITE_YIELD_S = 0.12


def _yielding_writer(writer: ChunkWriter):
    """``writer.write`` as short committed transactions with a pause after each (see above). A lock
    conflict rolls back just that slice, which is written again (the writer counts a slice only
    once it is written)."""
    write_slice = retry_on_lock(transaction.atomic(writer.write))

    def write(planned: list[tuple[Record, str]]) -> None:
        for start in range(0, len(planned), SQLITE_WRITE_RECORDS):
            write_slice(planned[start:start + SQLITE_WRITE_RECORDS])
            time.sleep(SQLITE_YIELD_S)

    return write


def _plan(
    known: _Known,
    chunk: list[Record],
    hashes: list[str],
    seen_hashes: set[str],
    seen_ids: dict[str, str],
    errors: ErrorLog,
    *,
    raters: _Raters,
    from_db: bool,
) -> tuple[list[tuple[Record, str]], tuple[int, int], list[tuple[str, list[Rating], str]]]:
    """Decide per record: write, skip (same content already in the project or earlier in the
    file), or error (its external id belongs to a different item).

    A skipped record's named raters (``Record.ratings``) are still added to the item already there,
    each rater once per item: the third value lists them, ``(content hash, ratings, source_detail)``. A rater whose
    label for that item is already stored (earlier in the file, or by an earlier import) is skipped
    when it is the same judgment, and is an error of the line when it differs (imported labels are
    never replaced)."""
    if from_db:
        known.look_up(hashes, [r.external_id for r in chunk if r.external_id])
        raters.look_up([d for r, d in zip(chunk, hashes) if r.ratings and d in known.hashes])
    in_db, ids_in_db = known.hashes, known.ids
    planned: list[tuple[Record, str]] = []
    attach: list[tuple[str, list[Rating], str]] = []
    in_file = present = 0  # skipped: same content earlier in the file / already in the project
    for record, digest in zip(chunk, hashes):
        eid = record.external_id
        if eid:
            if eid in ids_in_db and ids_in_db[eid] != digest:
                errors.add(record.line, f"id {eid!r} is already used by a different item in this project")
                continue
            if eid in seen_ids and seen_ids[eid] != digest:
                errors.add(record.line, f"id {eid!r} is used by a different item earlier in this file")
                continue
            seen_ids[eid] = digest
        if digest in in_db or digest in seen_hashes:
            if digest in seen_hashes:
                in_file += 1
            else:
                present += 1
            if record.ratings:
                new, problems = raters.new_for_existing(digest, record.ratings)
                for problem in problems:
                    errors.add(record.line, problem)
                if new and not problems:
                    attach.append((digest, new, record.source_detail))
            continue
        seen_hashes.add(digest)
        raters.remember(digest, record.ratings)
        planned.append((record, digest))
    return planned, (in_file, present), attach


class _Raters:
    """Which named raters each item of the file already has, and with which judgment (a 64-bit hash
    of ``Rating.fingerprint``), to add a rater's label to an item once. Kept for every item of the
    file that has named raters (about 100 bytes per rater label) and, in pass 1, looked up in the
    database for the items that are already there."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self.seen: dict[int, int] = {}  # hash((content hash, rater)) -> hash(fingerprint)
        self.stored: set[int] = set()  # the keys of self.seen that came from the database

    def remember(self, digest: str, ratings: list[Rating]) -> None:
        for rating in ratings:
            self.seen[hash((digest, rating.rater))] = hash(rating.fingerprint())

    def new_for_existing(self, digest: str, ratings: list[Rating]) -> tuple[list[Rating], list[str]]:
        new, problems = [], []
        for rating in ratings:
            key = hash((digest, rating.rater))
            before = self.seen.get(key)
            if before is None:
                self.seen[key] = hash(rating.fingerprint())
                new.append(rating)
            elif before != hash(rating.fingerprint()):
                where = "an earlier import" if key in self.stored else "an earlier line of this file"
                problems.append(f"rater {rating.rater!r} already has a different label for this item (from {where}); "
                                "an imported label is not replaced")
        return new, problems

    def look_up(self, digests: list[str]) -> None:
        """Pass 1: the named raters already stored for these items (by content hash)."""
        for digest, rater, fingerprint in stored_ratings(project_id=self.project_id, digests=digests):
            key = hash((digest, rater))
            if key not in self.seen:
                self.seen[key] = hash(fingerprint)
                self.stored.add(key)


class _Known:
    """What the project already holds, as far as this file is concerned.

    Pass 1 asks the database, chunk by chunk, which of the file's content hashes and external ids
    exist (committed rows only: nothing of ours is written yet) and remembers the hits. Pass 2 does
    not query per chunk: the table grows inside its own transaction, and the planner, whose
    statistics predate those rows, would scan the whole project for every chunk (quadratic at a
    million rows). Instead, once the project lock is held, ``catch_up`` adds every item committed
    in the project since pass 1 began. That is complete because every import inserts under the
    project lock, so a row committed later was also given a larger id than ``start_id`` (the
    project's largest id when pass 1 began). The unique constraints stay the last guard.
    """

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self.hashes: set[str] = set()
        self.ids: dict[str, str] = {}
        self.start_id = Item.objects.filter(project_id=project_id).aggregate(m=Max("id"))["m"] or 0

    def look_up(self, hashes: list[str], ids: list[str]) -> None:
        items = Item.objects.filter(project_id=self.project_id)
        if connection.vendor == "postgresql":
            # One array parameter instead of thousands of IN (%s, ...) placeholders.
            table = Item._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT content_hash FROM {table} WHERE project_id = %s AND content_hash = ANY(%s)",
                    [self.project_id, list(set(hashes))],
                )
                self.hashes.update(row[0] for row in cursor.fetchall())
                if ids:
                    cursor.execute(
                        f"SELECT external_id, content_hash FROM {table} "
                        "WHERE project_id = %s AND external_id <> '' AND external_id = ANY(%s)",
                        [self.project_id, list(set(ids))],
                    )
                    self.ids.update(cursor.fetchall())
            return
        self.hashes.update(items.filter(content_hash__in=set(hashes)).values_list("content_hash", flat=True))
        if ids:
            self.ids.update(items.filter(external_id__in=set(ids)).values_list("external_id", "content_hash"))

    def catch_up(self) -> None:
        rows = Item.objects.filter(project_id=self.project_id, id__gt=self.start_id).values_list(
            "content_hash", "external_id"
        )
        for digest, external_id in rows.iterator(chunk_size=5000):
            self.hashes.add(digest)
            if external_id:
                self.ids[external_id] = digest


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


def _parsed_chunks(
    reader: LineReader, records: Iterable[Record], ctx: ParseContext, size: int
) -> Iterator[tuple[list[Record], list[str], int, int]]:
    """Chunks of records with their content hashes, and how far the file had been read then."""
    for chunk in _chunks(records, size):
        yield chunk, [content_hash(r) for r in chunk], reader.bytes_read(), ctx.records_read


class _Progress:
    """Progress of a background batch: ``bytes_read`` counts both passes together in file bytes
    (half the file per pass), so ``ImportBatch.progress`` runs from 0 to 1 once.

    Pass 2 runs inside the import's transaction, whose writes nobody sees before the commit, so on
    PostgreSQL its progress goes through a second connection in autocommit mode. It only touches
    the batch row, which the import's transaction does not lock until its final UPDATE (after
    ``close``). On SQLite pass 2 commits chunk by chunk, so progress is written between chunks.
    """

    def __init__(self, batch: ImportBatch, *, enabled: bool, pass_no: int) -> None:
        self.batch = batch
        self.enabled = enabled
        self.pass_no = pass_no
        self.last = 0.0
        self.conn = None
        if enabled and pass_no == 2 and not commits_per_chunk():
            self.conn = connection.copy()

    def update(self, position: int, records: int) -> None:
        if not self.enabled or time.monotonic() - self.last < _PROGRESS_EVERY_S:
            return
        self.last = time.monotonic()
        half = self.batch.size_bytes // 2
        done = min(position, self.batch.size_bytes) // 2 + (half if self.pass_no == 2 else 0)
        now = timezone.now()
        if self.conn is None:
            retry_on_lock(ImportBatch.objects.filter(pk=self.batch.pk).update)(
                bytes_read=done, records_read=records, heartbeat_at=now
            )
        else:
            with self.conn.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {ImportBatch._meta.db_table} SET bytes_read = %s, heartbeat_at = %s WHERE id = %s",
                    [done, now, self.batch.pk],
                )

    def close(self) -> None:
        self.enabled = False
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _finish_failed(batch: ImportBatch, errors: ErrorLog, *, records_read: int) -> None:
    batch.status = ImportBatch.Status.FAILED
    batch.errors = sorted(errors.items, key=lambda e: e["line"])
    batch.error_count = errors.count
    batch.records_read = records_read
    batch.items_created = batch.items_skipped = batch.responses_created = batch.annotations_created = 0
    batch.finished_at = timezone.now()
    retry_on_lock(batch.save)(update_fields=[
        "status", "errors", "error_count", "records_read", "items_created", "items_skipped", "responses_created",
        "annotations_created", "finished_at", "detected_format", "sha256",
    ])


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _safe_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return cleaned[:200]
