"""Annotation queue under load: N simulated annotators doing next item + submit against a real server.

Serves the app the way the README tells production users (gunicorn, PostgreSQL), drives 1, 8 and
20 concurrent annotators (threads, each a logged-in ``requests.Session`` using the workbench API),
prints cycles/s and p50/p95/p99 latency per level, and afterwards checks in the database that
nothing was lost or doubled: every item has exactly ``overlap`` standing judgments, nobody was
handed an item twice, and the stored records are exactly the ones the server acknowledged.

Two ways to drive a cycle, each on its own fresh project per level (``--variants``):
- ``2req``: ``POST next/`` then ``POST submit/`` (two requests per item);
- ``1req``: ``POST submit/?next=1``, whose answer carries the next item (one request per item, as
  the htmx page does); the cycle latency is that one request.

Baseline in the same run: "renew" cycles, a POST to /next/ while holding a lease (auth, session,
one locked SELECT, no claim), give the floor that the framework and server cost on this machine.
After each level the CPU time used per cycle by the gunicorn workers, this database's PostgreSQL
backends and the client is printed (Linux /proc): on a shared 2-core machine that, not the wall
clock, says what a cycle costs.

    DATABASE_URL=postgres://postgres@localhost:5432/h_bench TRIBUNAL_VAR_DIR=/tmp/var_bench \\
        .venv/bin/python bench/annotate_load.py --port 8711 --workers 4 --items 300

Also imported by ``tests/annotation/test_workbench_concurrency.py`` and
``tests/annotation/test_workbench_api_next.py`` for the client side.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]


# --- The simulated annotator (also used by the integration test) -------------------------------------


def login(base_url: str, username: str, password: str) -> requests.Session:
    """A session logged in through the real login form, with the CSRF header set for the API."""
    s = requests.Session()
    r = s.get(f"{base_url}/login/", timeout=30)
    r.raise_for_status()
    token = s.cookies.get("csrftoken")
    r = s.post(
        f"{base_url}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base_url}/login/"},
        allow_redirects=False,
        timeout=30,
    )
    if r.status_code != 302:
        raise RuntimeError(f"login of {username} failed: HTTP {r.status_code}")
    csrf = s.cookies.get("csrftoken")
    if csrf is None:  # Django sets a fresh one on every login
        raise RuntimeError(f"login of {username} set no CSRF cookie")
    s.headers["X-CSRFToken"] = csrf
    s.headers["Referer"] = base_url + "/"
    return s


@dataclass
class AnnotatorLog:
    username: str
    served: list[int] = field(default_factory=list)  # item ids handed out, in order
    acknowledged: dict[int, int] = field(default_factory=dict)  # annotation id -> item id (201 responses)
    replays: int = 0
    next_retries: int = 0  # submits answered "saved, but no next item right now" (next_error)
    cycle_ms: list[float] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def judgment_body(payload: dict, rng: random.Random) -> dict:
    """A valid judgment for the served item, whatever the project's mode."""
    ids = [r["id"] for r in payload["responses"]]
    rng.shuffle(ids)
    body: dict = {"item": payload["item"], "idempotency_key": uuid.uuid4().hex, "confidence": rng.randint(1, 5)}
    mode = payload["mode"]
    if mode in ("ranking", "ranking_safety"):
        # a tie for the last two now and then
        body["ranking"] = [[i] for i in ids[:-2]] + ([ids[-2:]] if rng.random() < 0.3 else [[ids[-2]], [ids[-1]]])
    if mode == "pairwise":
        body.update(pair_choice=rng.choice(["a", "b"]), pair_strength=rng.randint(1, 3))
    if mode in ("safety", "ranking_safety"):
        body["response_safety"] = [
            {"response": i, "label": "unsafe", "categories": ["S1"]} if rng.random() < 0.2 else {"response": i, "label": "safe"}
            for i in ids
        ]
        if mode == "safety":
            body["prompt_label"] = "safe"
    return body


def work(
    session: requests.Session, base_url: str, slug: str, log: AnnotatorLog, *, retry_rate: float = 0.1,
    max_cycles: int | None = None, seed: int = 0, stop: threading.Event | None = None, one_request: bool = False,
    interval_s: float = 0.0,
) -> AnnotatorLog:
    """Take items and submit them until the queue is empty (HTTP 204, or ``next: null``). Every
    tenth submit or so is sent twice with the same idempotency key, as a double click or a retried
    request would.

    ``one_request=False``: a cycle is ``POST next/`` then ``POST submit/``. ``one_request=True``:
    one ``POST next/`` to start, then every cycle is a single ``POST submit/?next=1`` whose answer
    carries the next item; the cycle latency is that one request.

    ``interval_s > 0`` paces the annotator: cycle k starts no earlier than k * interval_s after
    the first (time spent reading), so N annotators offer at most N / interval_s cycles/s."""
    rng = random.Random(seed)
    nxt, sub = f"{base_url}/api/annotate/{slug}/next/", f"{base_url}/api/annotate/{slug}/submit/"
    if one_request:
        sub += "?next=1"
    cycles = 0
    payload: dict | None = None  # the item to judge next, when the last answer carried it
    start = time.perf_counter()
    while max_cycles is None or cycles < max_cycles:
        if stop is not None and stop.is_set():
            break
        if interval_s > 0:
            wait = start + cycles * interval_s - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        t0 = time.perf_counter()
        fetched = payload is None
        if payload is None:
            r = session.post(nxt, timeout=60)
            if r.status_code == 204:
                break
            if r.status_code != 200:
                log.errors.append(f"next: HTTP {r.status_code} {r.text[:200]}")
                break
            payload = r.json()
        t1 = time.perf_counter()
        log.served.append(payload["item"])
        body = judgment_body(payload, rng)
        t2 = time.perf_counter()
        r = session.post(sub, json=body, timeout=60)
        t3 = time.perf_counter()
        if r.status_code != 201:
            log.errors.append(f"submit: HTTP {r.status_code} {r.text[:200]}")
            break
        answer = r.json()
        log.acknowledged[answer["annotation"]] = payload["item"]
        if fetched:
            log.next_ms.append((t1 - t0) * 1000)
        log.submit_ms.append((t3 - t2) * 1000)
        log.cycle_ms.append((t1 - t0 + t3 - t2) * 1000)
        if rng.random() < retry_rate:
            again = session.post(sub, json=body, timeout=60)
            if again.status_code != 200 or not again.json().get("replayed"):
                log.errors.append(f"replay: HTTP {again.status_code} {again.text[:200]}")
            elif one_request and again.json().get("next") != answer.get("next"):
                log.errors.append("replay: a replayed submit named another next item")
            log.replays += 1
        cycles += 1
        if one_request:
            payload = answer.get("next")
            if payload is None and answer.get("next_error"):
                # Saved, but the next item could not be claimed just then: ask for it on its own.
                log.next_retries += 1
                continue
            if payload is None:
                break
        else:
            payload = None
    return log


def run_annotators(
    base_url: str, slug: str, users: list[tuple[str, str]], *, on_ready=None, **kw
) -> tuple[list[AnnotatorLog], float]:
    """Log everyone in, then let them all work at once. Returns the logs and the wall time (s).
    ``on_ready()`` runs after the logins (whose password hashing is not part of a cycle), just
    before the start."""
    sessions = [(login(base_url, u, p), AnnotatorLog(username=u)) for u, p in users]
    if on_ready is not None:
        on_ready()
    barrier = threading.Barrier(len(sessions) + 1)

    def go(i: int, s: requests.Session, log: AnnotatorLog) -> None:
        barrier.wait()
        try:
            work(s, base_url, slug, log, seed=i, **kw)
        except Exception as exc:
            log.errors.append(repr(exc))

    threads = [threading.Thread(target=go, args=(i, s, log)) for i, (s, log) in enumerate(sessions)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return [log for _, log in sessions], time.perf_counter() - t0


def integrity_problems(project, logs: list[AnnotatorLog], *, expected_per_item: int) -> list[str]:
    """What went wrong, checked against the database (empty list: nothing lost, nothing doubled)."""
    from django.db.models import Count, Q

    from annotation.models import Annotation, Item

    problems: list[str] = []
    for log in logs:
        problems += [f"{log.username}: {e}" for e in log.errors]
        if len(set(log.served)) != len(log.served):
            problems.append(f"{log.username} was handed an item twice")
    human = Annotation.objects.filter(project=project, source="human")
    stored = dict(human.values_list("pk", "item_id"))
    acked: dict[int, int] = {}
    for log in logs:
        acked.update(log.acknowledged)
    if stored != acked:
        lost = set(acked) - set(stored)
        extra = set(stored) - set(acked)
        problems.append(f"stored records differ from acknowledged ones: {len(lost)} lost, {len(extra)} unacknowledged")
    per_annotator_item = human.values("annotator", "item").annotate(n=Count("pk")).filter(n__gt=1)
    if per_annotator_item.exists():
        problems.append(f"{per_annotator_item.count()} (annotator, item) pairs have more than one record")
    counts = Item.objects.filter(project=project).annotate(
        n=Count("annotations", filter=Q(annotations__source="human"))
    ).values_list("pk", "n")
    wrong = [(pk, n) for pk, n in counts if n != expected_per_item]
    if wrong:
        problems.append(f"{len(wrong)} items do not have exactly {expected_per_item} annotations, e.g. {wrong[:5]}")
    return problems


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- The benchmark -----------------------------------------------------------------------------------


def _django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    import django

    django.setup()


def _make_project(slug: str, *, items: int, responses: int, overlap: int, annotators: int, mode: str):
    import json
    import tempfile

    from django.contrib.auth import get_user_model

    from annotation import services
    from annotation.importing import import_file
    from annotation.models import Membership

    services.roles_ensure_groups()
    versions = {v.taxonomy.slug: v for v in services.taxonomy_load_presets()}
    project = services.project_create(
        slug=slug, name=f"Bench {slug}", taxonomy_version=versions["aegis-2.0"],
        principle_set=services.principle_set_load_default(), overlap=overlap, mode=mode,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        with path.open("w") as fh:
            for i in range(items):
                fh.write(json.dumps({
                    "id": f"{slug}-{i}", "prompt": f"Bench prompt {i} of {slug}: how do I do thing {i}?",
                    "responses": [f"Answer {j} to {i}: " + "lorem ipsum " * 40 for j in range(responses)],
                }) + "\n")
        batch = import_file(project=project, path=path, source_name="bench.jsonl", fmt="tribunal", background=False)
        assert batch.status == "done", batch.errors
    User = get_user_model()
    users = []
    for i in range(annotators):
        name = f"{slug}-a{i}"
        user = User.objects.create_user(username=name, password="bench-pw-" + name)
        services.user_set_role(user=user, role="annotator")
        services.membership_set(project=project, user=user, role=Membership.Role.ANNOTATOR)
        users.append((name, "bench-pw-" + name))
    return project, users


def _serve(port: int, workers: int, env: dict, *, threads: int = 1) -> subprocess.Popen:
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--timeout", "120", "--log-level", "warning",
    ]
    if threads > 1:
        cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login/", timeout=10).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.5)
    proc.terminate()
    proc.wait(timeout=30)
    raise RuntimeError("gunicorn did not come up")


def _summary(name: str, logs: list[AnnotatorLog], wall: float, *, one_request: bool = False) -> dict:
    cycles = [c for log in logs for c in log.cycle_ms]
    nexts = [c for log in logs for c in log.next_ms]
    submits = [c for log in logs for c in log.submit_ms]
    row = {
        "level": name, "cycles": len(cycles), "wall_s": wall, "cycles_per_s": len(cycles) / wall if wall else 0.0,
        "p50": percentile(cycles, 50), "p95": percentile(cycles, 95), "p99": percentile(cycles, 99),
        "next_p95": percentile(nexts, 95), "submit_p95": percentile(submits, 95),
        "replays": sum(log.replays for log in logs),
    }
    split = (
        f"p95 submit?next=1 {row['submit_p95']:.1f}" if one_request
        else f"p95 next {row['next_p95']:.1f} submit {row['submit_p95']:.1f}"
    )
    print(
        f"{name:>26}: {row['cycles']:5d} cycles in {wall:6.2f}s = {row['cycles_per_s']:7.1f} cycles/s | cycle latency ms "
        f"p50 {row['p50']:6.1f} p95 {row['p95']:6.1f} p99 {row['p99']:6.1f} | {split} | {row['replays']} retried submits",
        flush=True,
    )
    return row


def _baseline(base_url: str, slug: str, user: tuple[str, str], seconds: float, threads: int) -> None:
    """POST /next/ while holding a lease: the same auth/session/HTTP path without a claim or a write."""
    sessions = [login(base_url, *user) for _ in range(threads)]
    sessions[0].post(f"{base_url}/api/annotate/{slug}/next/", timeout=30)
    times: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def go(s: requests.Session) -> None:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = s.post(f"{base_url}/api/annotate/{slug}/next/", timeout=30)
            r.raise_for_status()
            with lock:
                times.append((time.perf_counter() - t0) * 1000)

    ts = [threading.Thread(target=go, args=(s,)) for s in sessions]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    print(
        f"{'baseline x' + str(threads):>26}: {len(times):5d} renew requests in {wall:6.2f}s = {len(times) / wall:7.1f} req/s | "
        f"latency ms p50 {percentile(times, 50):6.1f} p95 {percentile(times, 95):6.1f} p99 {percentile(times, 99):6.1f}",
        flush=True,
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(server_pid: int) -> dict[str, Any]:  # seconds; "_backends": seconds by backend pid
    """CPU seconds used so far by the gunicorn workers, this database's PostgreSQL backends and
    this (client) process: where a cycle's CPU goes on the shared machine."""
    from django.db import connection

    workers = [
        int(p.name) for p in Path("/proc").iterdir()
        if p.name.isdigit() and _ppid(int(p.name)) == server_pid
    ]
    with connection.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        backends = [row[0] for row in cur.fetchall()]
    connection.close()
    t = os.times()
    return {
        "gunicorn": sum(_cpu_seconds(p) for p in workers),
        "postgres": sum(_cpu_seconds(p) for p in backends),
        "client": t.user + t.system,
        "_backends": {p: _cpu_seconds(p) for p in backends},
    }


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def _cpu_report(before: dict, after: dict, cycles: int) -> str:
    # Backends that ended during the level took their CPU with them; ones that started count whole.
    pg = sum(v - before["_backends"].get(p, 0.0) for p, v in after["_backends"].items())
    parts = {"gunicorn": after["gunicorn"] - before["gunicorn"], "postgres": pg, "client": after["client"] - before["client"]}
    total = sum(parts.values())
    per = " + ".join(f"{k} {1000 * v / max(cycles, 1):.1f}" for k, v in parts.items())
    return f"  CPU ms per cycle: {per} = {1000 * total / max(cycles, 1):.1f} (2 cores: at most {2 * cycles / max(total, 1e-9):.0f} cycles/s if nothing else ran)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8711)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (the README's production default: 4)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (>1: gthread workers)")
    parser.add_argument("--items", type=int, default=300, help="items per level")
    parser.add_argument("--responses", type=int, default=3)
    parser.add_argument("--levels", default="1,8,20")
    parser.add_argument(
        "--variants", default="2req,1req",
        help="2req: POST next/ + POST submit/ per cycle; 1req: POST submit/?next=1 per cycle (the answer carries the next item)",
    )
    parser.add_argument("--mode", default="ranking_safety")
    parser.add_argument(
        "--paced", type=float, default=100.0,
        help="after the levels, one more 1req run at the top level with the annotators paced to offer this many "
        "cycles/s in total (0: skip): the latency at that rate rather than at saturation",
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("Set DATABASE_URL to a PostgreSQL database (the bench measures the production setup).", file=sys.stderr)
        return 2
    _django_setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret"),
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING"}
    server = _serve(args.port, args.workers, env, threads=args.threads)
    base = f"http://127.0.0.1:{args.port}"
    run = uuid.uuid4().hex[:6]
    failures = 0
    levels = [int(x) for x in args.levels.split(",")]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    threads = f" --threads {args.threads}" if args.threads > 1 else ""
    print(f"gunicorn config.wsgi:application --workers {args.workers}{threads} on 127.0.0.1:{args.port}; PostgreSQL; "
          f"{args.items} items x {args.responses} responses per level; mode {args.mode}; {os.cpu_count()} CPUs; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    runs = [(level, variant, 0.0) for level in levels for variant in variants]
    if args.paced > 0:
        runs.append((max(levels), "1req", max(levels) / args.paced))
    try:
        for level, variant, interval in runs:
            overlap = min(2, level)
            project, users = _make_project(
                f"bench-{run}-{level}-{variant}{'-paced' if interval else ''}", items=args.items,
                responses=args.responses, overlap=overlap, annotators=level, mode=args.mode,
            )
            connection.close()
            if level == max(levels) and variant == variants[0] and not interval:
                _baseline(base, project.slug, users[0], seconds=3.0, threads=level)
                from annotation.models import Assignment

                Assignment.objects.filter(project=project).delete()  # the baseline's lease, unsubmitted
            cpu0: dict = {}
            logs, wall = run_annotators(
                base, project.slug, users, one_request=(variant == "1req"), interval_s=interval,
                on_ready=lambda snapshot=cpu0: snapshot.update(_cpu_snapshot(server.pid)),
            )
            cpu1 = _cpu_snapshot(server.pid)
            name = f"{level} annot. {variant}" + (f" paced {level / interval:.0f}/s" if interval else "")
            row = _summary(name, logs, wall, one_request=(variant == "1req"))
            print(_cpu_report(cpu0, cpu1, row["cycles"]), flush=True)
            problems = integrity_problems(project, logs, expected_per_item=overlap)
            if problems:
                failures += 1
                print("  INTEGRITY FAILED: " + "; ".join(problems), flush=True)
            else:
                print(f"  integrity: every item has exactly {overlap} judgment(s); nobody got an item twice; "
                      "stored records == acknowledged records", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
