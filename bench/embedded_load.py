"""The `make run` install under load: N annotators flat out, plus a background import and an export.

Starts ``scripts/run.sh`` exactly as ``make run`` does (2 gunicorn workers, a real Celery worker on
the filesystem broker, migrate + presets + demo), once per database: the embedded SQLite default,
and PostgreSQL (``--postgres-url``, a database this script creates and drops) with everything else
the same. Each run makes a project of ``--items`` items, ``--annotators`` annotator accounts
(overlap 2), and then, while the annotators work through the workbench API as fast as the server
answers (``POST submit/?next=1``, one request per item, ~10% of submits sent twice with the same
idempotency key), enqueues a background import of ``--import-items`` items into a second project
and a DPO export of the first. It prints cycles/s and latency for each database side by side and
checks, in the database afterwards:

- no request failed (any non-2xx answer is an error: a 500, a 503 "busy", anything),
- stored human records == acknowledged records, nobody got an item twice, every item has exactly
  2 standing judgments,
- the import ended DONE with every item, and the export DONE.

    .venv/bin/python bench/embedded_load.py --annotators 20 \\
        --postgres-url postgres://postgres@localhost:5432/postgres

``tests/test_embedded_load.py`` runs the short form (5 annotators, SQLite only). Exit status 1
when any check failed. The subcommands starting with ``_`` run inside the stack's environment
(they are how this process, which is not configured for the stack's database, reads and writes it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VENV = Path(os.environ.get("VENV", ROOT / ".venv"))
# Generous: a loaded CI machine starts the stack (migrate, presets, demo, collectstatic) slowly.
START_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- The stack: scripts/run.sh in its own process group ----------------------------------------------


class Stack:
    """``scripts/run.sh`` (what ``make run`` starts) with a private var dir and port."""

    def __init__(self, var_dir: Path, *, database_url: str | None = None, web_workers: int = 2, env: dict | None = None):
        self.var_dir = Path(var_dir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", str(self.var_dir)),
            "VENV": str(VENV),
            "PORT": str(self.port),
            "TRIBUNAL_VAR_DIR": str(self.var_dir),
            "WEB_WORKERS": str(web_workers),
            "LOG_LEVEL": "WARNING",
            "HF_HUB_OFFLINE": "1",
            **(env or {}),
        }
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self) -> Stack:
        self.proc = subprocess.Popen(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(r"^Tribunal is running at ", START_TIMEOUT_S)
        self.wait_for(r"tribunal@\S+ ready", START_TIMEOUT_S)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.output, flags=re.M):
                return
            if self.proc is not None and self.proc.poll() is not None:
                time.sleep(0.5)
                raise RuntimeError(f"run.sh exited ({self.proc.returncode}) before {pattern!r}:\n{self.output[-5000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"no {pattern!r} after {timeout}s:\n{self.output[-5000:]}")

    def manage(self, *args: str, timeout: float = 600) -> dict:
        """Run one of this file's ``_`` subcommands in the stack's environment; returns its JSON."""
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "config.settings",
               "SECRET_KEY_FILE": str(self.var_dir / "secret_key")}
        proc = subprocess.run(
            [str(VENV / "bin" / "python"), str(Path(__file__).resolve()), *args], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def server_errors(self) -> list[str]:
        """Tracebacks and 5xx answers in the stack's log (gunicorn's access log lists every request)."""
        bad = []
        for line in self.lines:
            if ("Traceback" in line or "raised unexpected" in line or "cannot join current thread" in line
                    or re.search(r'" 5\d\d \d', line)):
                bad.append(line)
        return bad

    def lock_retries(self) -> int:
        """How many times ``annotation.dbretry`` ran a transaction again after a lock conflict."""
        return sum(1 for line in self.lines if "retrying in" in line)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- One measured run ------------------------------------------------------------------------------


@dataclass
class Result:
    database: str
    annotators: int
    cycles: int = 0
    wall_s: float = 0.0
    cycles_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    replays: int = 0
    next_retries: int = 0
    lock_retries: int = 0
    import_s: float | None = None
    export_s: float | None = None
    problems: list[str] = field(default_factory=list)


def run_load(
    stack: Stack, *, database: str, annotators: int, items: int, import_items: int, responses: int = 3,
    jobs_after_s: float = 1.0,
) -> Result:
    """Set up, let ``annotators`` work flat out, start an import and an export meanwhile, check."""
    from bench.annotate_load import percentile, run_annotators

    slug = f"load-{uuid.uuid4().hex[:6]}"
    setup = stack.manage("_setup", slug, str(items), str(responses), str(annotators))
    users = [tuple(u) for u in setup["users"]]
    data = stack.var_dir / f"{slug}-bulk.jsonl"
    with data.open("w") as fh:
        for i in range(import_items):
            fh.write(json.dumps({
                "id": f"bulk-{i}", "prompt": f"Bulk prompt {i}: how would you answer question {i}?",
                "responses": [f"Bulk answer {j} to {i}. " + "filler text " * 30 for j in range(responses)],
                "ranking": list(range(responses)),
            }) + "\n")
    jobs: dict = {}

    def start_jobs() -> None:
        time.sleep(jobs_after_s)  # the annotators are under way
        try:
            jobs.update(stack.manage("_enqueue", slug, str(data)))
        except Exception as exc:
            jobs["error"] = str(exc)[-2000:]

    starter = threading.Thread(target=start_jobs)
    logs, wall = run_annotators(stack.base, slug, users, one_request=True, on_ready=starter.start)
    starter.join()

    result = Result(database=database, annotators=annotators)
    cycles = [c for log in logs for c in log.cycle_ms]
    result.cycles, result.wall_s = len(cycles), wall
    result.cycles_per_s = len(cycles) / wall if wall else 0.0
    result.p50_ms, result.p95_ms, result.p99_ms = (percentile(cycles, p) for p in (50, 95, 99))
    result.max_ms = max(cycles, default=0.0)
    result.replays = sum(log.replays for log in logs)
    result.next_retries = sum(log.next_retries for log in logs)

    # The jobs: wait for both to end (generous: they share 2 cores with everything else).
    if "error" in jobs:
        result.problems.append(f"could not start the import and export: {jobs['error']}")
        return result
    deadline = time.monotonic() + 600
    status: dict = {}
    while time.monotonic() < deadline:
        status = stack.manage("_status", str(jobs["import"]), str(jobs["export"]))
        if status["import"]["status"] in ("done", "failed") and status["export"]["status"] in ("done", "failed"):
            break
        time.sleep(1.0)
    if status.get("import", {}).get("finished_at") is not None:
        result.import_s = status["import"]["seconds"]
    if status.get("export", {}).get("finished_at") is not None:
        result.export_s = status["export"]["seconds"]
    if status["import"]["status"] != "done" or status["import"]["items_created"] != import_items:
        result.problems.append(f"import: {status['import']}")
    if status["export"]["status"] != "done":
        result.problems.append(f"export: {status['export']}")

    check = stack.manage(
        "_check", slug,
        json.dumps([{"username": log.username, "served": log.served, "acknowledged": log.acknowledged,
                     "errors": log.errors} for log in logs]),
    )
    result.problems += check["problems"]
    result.problems += [f"server log: {line}" for line in stack.server_errors()[:20]]
    result.lock_retries = stack.lock_retries()
    return result


def print_results(results: list[Result]) -> None:
    print(f"{'database':>10} {'annot.':>6} {'cycles':>7} {'cycles/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'import s':>9} {'export s':>9} {'resent':>7} {'lock retries':>12} {'errors':>7}")
    for r in results:
        imp = f"{r.import_s:.1f}" if r.import_s is not None else "-"
        exp = f"{r.export_s:.1f}" if r.export_s is not None else "-"
        print(f"{r.database:>10} {r.annotators:>6} {r.cycles:>7} {r.cycles_per_s:>9.1f} {r.p50_ms:>8.1f} {r.p95_ms:>8.1f} "
              f"{r.p99_ms:>8.1f} {r.max_ms:>8.1f} {imp:>9} {exp:>9} {r.replays:>7} {r.lock_retries:>12} {len(r.problems):>7}",
              flush=True)
    for r in results:
        for p in r.problems[:20]:
            print(f"  {r.database}: {p}", flush=True)


# --- Subcommands run inside the stack's environment ---------------------------------------------------


def _django() -> None:
    import django

    django.setup()


def cmd_setup(slug: str, items: str, responses: str, annotators: str) -> dict:
    _django()
    from bench.annotate_load import _make_project

    _, users = _make_project(slug, items=int(items), responses=int(responses), overlap=2,
                             annotators=int(annotators), mode="ranking_safety")
    return {"users": users}


def cmd_enqueue(slug: str, data: str) -> dict:
    """A background import into a second project and a background DPO export of ``slug``."""
    _django()
    from annotation import services
    from annotation.importing import import_file
    from annotation.models import Project
    from exports import services as export_services

    project = Project.objects.get(slug=slug)
    bulk = services.project_create(
        slug=f"{slug}-bulk", name=f"Bulk {slug}", taxonomy_version=project.taxonomy_version,
        principle_set=project.principle_set, overlap=1, mode="ranking",
    )
    batch = import_file(project=bulk, path=Path(data), source_name="bulk.jsonl", fmt="tribunal", background=True)
    export = export_services.export_request(project=project, options={"format": "dpo"}, background=True)
    return {"import": batch.pk, "export": export.pk}


def cmd_status(import_id: str, export_id: str) -> dict:
    _django()
    from annotation.models import ImportBatch
    from exports.models import Export

    def seconds(job) -> float | None:
        if job.finished_at and job.started_at:
            return (job.finished_at - job.started_at).total_seconds()
        return None

    batch = ImportBatch.objects.get(pk=import_id)
    export = Export.objects.get(pk=export_id)
    return {
        "import": {"status": batch.status, "items_created": batch.items_created, "errors": batch.errors[:3],
                   "finished_at": str(batch.finished_at) if batch.finished_at else None, "seconds": seconds(batch)},
        "export": {"status": export.status, "error": export.error,
                   "finished_at": str(export.finished_at) if export.finished_at else None, "seconds": seconds(export)},
    }


def cmd_check(slug: str, logs_json: str) -> dict:
    _django()
    from annotation.models import Project
    from bench.annotate_load import AnnotatorLog, integrity_problems

    logs = []
    for raw in json.loads(logs_json):
        log = AnnotatorLog(username=raw["username"], served=raw["served"], errors=raw["errors"])
        log.acknowledged = {int(k): v for k, v in raw["acknowledged"].items()}
        logs.append(log)
    return {"problems": integrity_problems(Project.objects.get(slug=slug), logs, expected_per_item=2)}


SUBCOMMANDS: dict[str, Callable[..., dict]] = {"_setup": cmd_setup, "_enqueue": cmd_enqueue, "_status": cmd_status, "_check": cmd_check}


def _postgres_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    """Create a fresh database beside ``admin_url``'s; returns its URL and a function that drops it."""
    import psycopg

    name = f"tribunal_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        print(json.dumps(SUBCOMMANDS[sys.argv[1]](*sys.argv[2:]), default=str))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--items", type=int, default=300, help="items in the annotated project (overlap 2)")
    parser.add_argument("--import-items", type=int, default=20000, help="items in the background import")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--import-batch-size", type=int, default=None,
                        help="IMPORT_BATCH_SIZE for the stack (default: the setting's default, 2000)")
    parser.add_argument("--postgres-url", default="postgres://postgres@localhost:5432/postgres",
                        help="a database on the server where the bench may CREATE and DROP its own")
    args = parser.parse_args()
    print(f"scripts/run.sh (make run): gunicorn 2 workers, Celery worker on the filesystem broker; "
          f"{args.annotators} annotators flat out on {args.items} items x 3 responses (overlap 2); a background "
          f"import of {args.import_items} items and a DPO export during the run; {os.cpu_count()} CPUs; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results = []
    for database in [d.strip() for d in args.databases.split(",") if d.strip()]:
        drop = None
        url = None
        if database == "postgres":
            url, drop = _postgres_database(args.postgres_url)
        with tempfile.TemporaryDirectory(prefix=f"tribunal-load-{database}-") as tmp:
            env = {"IMPORT_BATCH_SIZE": str(args.import_batch_size)} if args.import_batch_size else None
            stack = Stack(Path(tmp) / "var", database_url=url, env=env)
            try:
                stack.start()
                results.append(run_load(stack, database=database, annotators=args.annotators, items=args.items,
                                        import_items=args.import_items))
            finally:
                stack.stop()
                if drop is not None:
                    drop()
        print_results(results[-1:])
    print("\nside by side:")
    print_results(results)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
