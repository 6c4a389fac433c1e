"""Export fidelity harness: the sha256 of every file of ~230 exports of one mixed project, so a
refactor can prove "the export bytes are identical before and after".

    # record the hashes on the commit before the change (SQLite: no setup needed)
    SECRET_KEY=x HF_HUB_OFFLINE=1 .venv/bin/python bench/export_hashes.py --out /tmp/before.json
    # ... change the code ..., then compare (exit status 1 and a list of every differing combo/file)
    SECRET_KEY=x HF_HUB_OFFLINE=1 .venv/bin/python bench/export_hashes.py --compare /tmp/before.json

    # the same on PostgreSQL (the json_agg reader and the prefetch thread only run there): the
    # script CREATEs the named database, runs, and DROPs it at the end (it refuses a database that
    # already exists unless --drop-existing is given)
    ... bench/export_hashes.py --database-url postgres://postgres@localhost:5432/tribunal_hashes --out /tmp/pg.json

Other options: ``--only REGEX`` runs the combos whose name matches; ``--list`` prints the combo
names; ``--items N`` scales the project (default 620 own-format items + 80 HH-RLHF items = 700);
``--keep DIR`` keeps the exported folders and the SQLite file in DIR (empty or absent; default: a
temporary folder that is removed);
``--quiet``. The manifest (``--out``, or stdout without ``--out``/``--compare``) is
``{combo_name: {relative_file: sha256}}``; a combo whose export fails (e.g. no row qualifies) maps
to ``{"!failed": "<the job's error message>"}``, so a change in that message is caught too.

What it does, in one fresh process, on a fresh database (so every id is the same on every run):

1. A temporary ``TRIBUNAL_VAR_DIR`` (SQLite file, Celery filesystem broker, export folder), Celery
   tasks eager, ``migrate``, the presets (aegis-2.0 taxonomy, default principles).
2. The project, built with a seeded ``random.Random`` through the project's own code paths:
   - ``annotation.importing.service.import_file`` of a generated own-format JSONL file (plain and
     multi-turn prompts, 1-4 responses, unicode, control characters, quotes and markup, some
     items with ``metadata.flagged``; imported rankings with ties, pair preferences with a/b in
     either order, safety labels with categories) and of an HH-RLHF JSONL file;
   - the workbench services (``queue_next``, ``annotation_submit``, ``annotation_undo_last``,
     ``assignment_skip``, ``assignment_flag``) for five annotators: a pairwise phase (overlap 3,
     so one to three pair votes per item; the shown order is shuffled per annotator, so a and b
     are swapped between votes), then a ranking + safety phase with ties, corrections (undo then
     a new answer), undos that stay withdrawn and flagged items;
   - the jury services (``jury_run_start`` → chunks → ``jury_run_finalize``) with two jurors
     whose model is a deterministic stand-in (log-probabilities from a sha256 of the context and
     label, registered in the backend cache): preference and safety runs on subsets of items,
     i.e. real jury annotations, response labels and ``JuryDecision`` confidences;
   - ``adjudication_record`` on some items, a few adjudicated twice (superseded).
3. Every combo through ``exports.services.export_request`` + ``export_run`` with
   ``background=False`` into its own folder, then the sha256 of every file in it.

Time: record creation times come from ``timezone.now`` / field defaults, which would put
today's date into the data (the date filters read them). While the project is built, a fake clock
stands in for ``django.utils.timezone.now`` and for the ``timezone.now`` default of every model
field: fixed instants on a few days in March 2025, one per phase. It is restored before the
exports run, so the exports themselves use the real clock. No field of the export output is
normalised: the files are hashed exactly as written (the export writes no timestamps, and the
``datasets`` fingerprint is already replaced by a hash of the data in ``exports.writers``).

Not covered: the export page / API (they build the same options and call the same services) and
``background=True`` (the same ``export_run`` on a worker).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

SEED = 20250301
UTC = dt.UTC


def _log(msg: str) -> None:
    if not _QUIET:
        print(msg, file=sys.stderr, flush=True)


_QUIET = False


# --- the option combinations ---------------------------------------------------------------------

FORMATS = ("dpo", "pro", "kto", "d2o", "sft", "guard-aegis", "guard-llamaguard")
DEFAULTS = {
    "source": "human-with-jury-fallback", "ranking_method": "borda", "tie_policy": "skip", "needs_caution": "defensive",
    "safety_tie": "skip", "style": "standard", "pro_layout": "pro", "pair_policy": "best-vs-worst",
    "include_margin": False, "signal": "preference", "min_agreement": None, "min_annotators": None, "date_from": None,
    "date_to": None, "categories": (), "min_jury_confidence": None, "exclude_flagged": False, "split": "1,0,0",
    "seed": 0, "outputs": "jsonl,parquet", "chunk_size": 1000,
}


def _name(opts: dict) -> str:
    """A readable, unique name: the format, then every option that is not the default."""
    parts = [opts["format"]]
    for key in sorted(opts):
        if key == "format":
            continue
        value = opts[key]
        if value == DEFAULTS.get(key, object()):
            continue
        if isinstance(value, (list, tuple)):
            value = "+".join(map(str, value))
        parts.append(f"{key}={value}")
    return "/".join(parts)


def combos(category_codes: list[str]) -> dict[str, dict]:
    """Every option combination, by name (duplicates collapse: the name is the options)."""
    out: dict[str, dict] = {}

    def add(**opts) -> None:
        opts = {k: v for k, v in opts.items() if v != DEFAULTS.get(k, object())}
        out.setdefault(_name(opts), opts)

    prefs = ("dpo", "pro", "kto", "d2o", "sft")
    guards = ("guard-aegis", "guard-llamaguard")
    # every format and style
    for fmt in FORMATS:
        for style in ("standard", "conversational"):
            add(format=fmt, style=style)
    # DPO: pair policy x tie policy x margin
    for pair in ("best-vs-worst", "all-ordered-pairs", "adjacent"):
        for tie in ("skip", "expand", "position"):
            for margin in (False, True):
                add(format="dpo", pair_policy=pair, tie_policy=tie, include_margin=margin)
    # PRO: layout x tie policy x style
    for layout in ("pro", "plain"):
        for tie in ("skip", "expand", "position"):
            for style in ("standard", "conversational"):
                add(format="pro", pro_layout=layout, tie_policy=tie, style=style)
    # SFT, KTO, D2O: tie policy (and signal)
    for tie in ("skip", "expand", "position"):
        add(format="sft", tie_policy=tie)
        add(format="sft", tie_policy=tie, style="conversational")
        for fmt in ("kto", "d2o"):
            add(format=fmt, tie_policy=tie)
            add(format=fmt, tie_policy=tie, pair_policy="all-ordered-pairs")
    # safety signal for KTO / D2O, and guard formats: needs-caution x safety tie
    for caution in ("permissive", "defensive"):
        for stie in ("skip", "unsafe", "safe"):
            for fmt in ("kto", "d2o", *guards):
                extra = {"signal": "safety"} if fmt in ("kto", "d2o") else {}
                add(format=fmt, needs_caution=caution, safety_tie=stie, **extra)
    # ranking methods x formats x tie policy
    for method in ("borda", "copeland", "ranked-pairs", "bradley-terry"):
        for fmt in ("dpo", "pro", "sft", "kto", "d2o"):
            add(format=fmt, ranking_method=method)
        for tie in ("expand", "position"):
            add(format="dpo", ranking_method=method, tie_policy=tie, pair_policy="all-ordered-pairs", include_margin=True)
        add(format="pro", ranking_method=method, tie_policy="expand", pro_layout="plain")
    # source policies x formats
    for source in ("human-only", "jury-only", "human-with-jury-fallback", "adjudicated-only"):
        for fmt in (*prefs, *guards):
            add(format=fmt, source=source)
        add(format="kto", source=source, signal="safety")
        add(format="dpo", source=source, tie_policy="expand", ranking_method="copeland")
    # filters
    for fmt in ("dpo", "pro", "guard-aegis", "kto"):
        for agreement in (0.5, 0.75, 1.0):
            add(format=fmt, min_agreement=agreement)
        for annotators in (2, 3):
            add(format=fmt, min_annotators=annotators)
        add(format=fmt, exclude_flagged=True)
        add(format=fmt, date_from="2025-03-05")
        add(format=fmt, date_to="2025-03-03")
        add(format=fmt, date_from="2025-03-03", date_to="2025-03-08")
        for conf in (0.3, 0.6, 0.9):
            add(format=fmt, min_jury_confidence=conf, source="jury-only" if fmt != "pro" else "human-with-jury-fallback")
    cats = category_codes[:3]
    for fmt in ("guard-aegis", "guard-llamaguard", "dpo", "kto"):
        add(format=fmt, categories=tuple(cats[:1]))
        add(format=fmt, categories=tuple(cats))
    add(format="guard-aegis", categories=tuple(cats), exclude_flagged=True, min_agreement=0.6, needs_caution="permissive")
    add(format="dpo", exclude_flagged=True, min_annotators=2, min_agreement=0.5, date_from="2025-03-01",
        date_to="2025-03-31", tie_policy="expand", pair_policy="adjacent")
    # splits and seeds
    for fmt in ("dpo", "pro", "guard-llamaguard", "sft", "d2o"):
        for split, seed in (("0.8,0.1,0.1", 0), ("0.8,0.1,0.1", 1), ("0.8,0.1,0.1", 42), ("0.5,0.5,0", 7),
                            ("0,0,1", 0), ("0.34,0.33,0.33", 3), ("0,0.3,0.7", 11)):
            add(format=fmt, split=split, seed=seed)
    # chunk sizes
    for size in (3, 7, 50, 333, 2000):
        for fmt in ("dpo", "pro", "guard-aegis", "kto"):
            add(format=fmt, chunk_size=size)
        add(format="dpo", chunk_size=size, split="0.8,0.1,0.1", seed=5, tie_policy="expand", pair_policy="all-ordered-pairs")
    # outputs
    for outputs in ("jsonl", "parquet", "hf", "jsonl,parquet,hf"):
        for fmt in FORMATS:
            if outputs == "jsonl" or outputs == "jsonl,parquet,hf" or fmt in ("dpo", "guard-aegis", "pro"):
                add(format=fmt, outputs=outputs)
    add(format="dpo", outputs="jsonl,parquet,hf", split="0.8,0.1,0.1", seed=9, chunk_size=7, include_margin=True)
    add(format="guard-llamaguard", outputs="hf", split="0.5,0.25,0.25", style="conversational")
    add(format="pro", outputs="parquet,hf", split="0.6,0.2,0.2", tie_policy="expand", style="conversational")
    return out


# --- building the project ------------------------------------------------------------------------

UNICODE_BITS = [
    "café", "naïve", "Ελληνικά", "日本語のテキスト", "中文问题", "한국어", "עברית‏", "العربية", "emoji 🧪🔥👩‍🔬",
    "combining e\u0301", "zero\u200bwidth", "line\u2028separator", "para\u2029graph", "nbsp\u00a0here", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]
CONTROL_BITS = ["tab\there", "bell\x07", "esc\x1b[31m", "cr\rlf", "nl\nline", "back\\slash", 'quote "q"', "ff\x0c",
                "del\x7f", "<script>alert(1)</script>", "{\"json\": [1, 2]}", "  padded  ", "c1\x85ctl"]
WORDS = ("starter", "sourdough", "lock", "garden", "river", "tax", "recipe", "poem", "bridge", "python", "chemistry",
         "history", "password", "medicine", "weather", "budget", "engine", "violin", "contract", "vaccine")


def _text(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.25:
        words.insert(rng.randrange(len(words) + 1), rng.choice(UNICODE_BITS))
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words) + 1), rng.choice(CONTROL_BITS))
    return " ".join(words)


def _safety_entry(rng: random.Random, codes: list[str]) -> dict:
    label = rng.choices(["safe", "needs_caution", "unsafe"], [5, 2, 3])[0]
    cats = rng.sample(codes, rng.randint(1, 2)) if label == "unsafe" else []
    return {"label": label, "categories": cats}


def own_format_lines(rng: random.Random, n: int, codes: list[str]) -> list[dict]:
    rows = []
    for i in range(n):
        prompt: list[dict[str, str]] | str  # chat messages, or one string
        if rng.random() < 0.2:
            prompt = [{"role": "system", "content": "You are terse. " + _text(rng, 3)}] if rng.random() < 0.5 else []
            prompt += [{"role": "user", "content": _text(rng, 6)}, {"role": "assistant", "content": _text(rng, 5)},
                       {"role": "user", "content": f"and #{i}? " + _text(rng, 4)}]
        else:
            prompt = f"Q{i}: " + _text(rng, rng.randint(3, 14))
        k = rng.choices([1, 2, 3, 4], [1, 9, 6, 4])[0]
        responses: list[dict[str, str] | str] = []
        for p in range(k):
            text = f"R{i}.{p} " + _text(rng, rng.randint(2, 20))
            if rng.random() < 0.3:
                responses.append({"text": text, "model": rng.choice(["m-small", "m-large", "modèle-ü"]), "id": f"r{p}"})
            else:
                responses.append(text)
        row: dict = {"prompt": prompt, "responses": responses}
        if rng.random() < 0.9:
            row["id"] = rng.choice([f"item-{i:04d}", f"ítem-{i}-ü", f"{i}"]) if rng.random() < 0.3 else f"item-{i:04d}"
        meta: dict = {}
        if rng.random() < 0.5:
            meta["topic"] = rng.choice(WORDS)
        r = rng.random()
        if r < 0.04:
            meta["flagged"] = True
        elif r < 0.06:
            meta["flagged"] = False
        if meta:
            row["metadata"] = meta
        what = rng.random()
        if k >= 2 and what < 0.3:  # a ranking, often with ties
            order = list(range(k))
            rng.shuffle(order)
            groups: list[list[int]] = []
            for idx in order:
                if groups and rng.random() < 0.35:
                    groups[-1].append(idx)
                else:
                    groups.append([idx])
            row["ranking"] = groups
        elif k >= 2 and what < 0.5:  # one pair, a and b in either order
            a, b = rng.sample(range(k), 2)
            choice = rng.choices(["a", "b", "tie"], [4, 4, 1])[0]
            row["preference"] = {"a": a, "b": b, "choice": choice, "strength": 0 if choice == "tie" else rng.randint(1, 3)}
        if rng.random() < 0.35:
            safety: dict = {}
            if rng.random() < 0.8:
                entry = _safety_entry(rng, codes)
                safety["prompt_label"], safety["prompt_categories"] = entry["label"], entry["categories"]
            safety["responses"] = [_safety_entry(rng, codes) if rng.random() < 0.7 else None for _ in range(k)]
            if safety.get("prompt_label") or any(safety["responses"]):
                row["safety"] = safety
        if rng.random() < 0.3:
            row["source"] = rng.choice(["vendor-a", "oasst-like", "ünïcode-src"])
        rows.append(row)
    return rows


def hh_lines(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        convo = f"\n\nHuman: HH{i} {_text(rng, 6)}"
        if rng.random() < 0.4:
            convo += f"\n\nAssistant: {_text(rng, 5)}\n\nHuman: {_text(rng, 4)}"
        rows.append({"chosen": convo + f"\n\nAssistant: good {i} {_text(rng, 8)}",
                     "rejected": convo + f"\n\nAssistant: bad {i} {_text(rng, 7)}"})
    return rows


class FakeClock:
    """A fixed 'now' per build phase (see the module docstring)."""

    def __init__(self) -> None:
        self.current = dt.datetime(2025, 3, 1, 10, 0, tzinfo=UTC)

    def set(self, day: int, hour: int = 10) -> None:
        self.current = dt.datetime(2025, 3, day, hour, 0, tzinfo=UTC)

    def __call__(self) -> dt.datetime:
        return self.current


class _Clocked:
    """Replace ``timezone.now`` (module attribute and every model field default) by ``clock``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.fields: list = []

    def __enter__(self):
        from django.apps import apps
        from django.utils import timezone

        self.real = timezone.now
        timezone.now = self.clock
        for model in apps.get_models():
            for f in model._meta.concrete_fields:
                if f.default is self.real:
                    f.default = self.clock
                    f.__dict__.pop("_get_default", None)  # a cached_property on Field
                    self.fields.append(f)
        return self

    def __exit__(self, *exc) -> None:
        from django.utils import timezone

        timezone.now = self.real
        for f in self.fields:
            f.default = self.real
            f.__dict__.pop("_get_default", None)


def _fake_backend_class():
    """A deterministic stand-in for a juror's model: words as tokens, and log-probabilities from a
    sha256 of (model name, context, label)."""
    from jury.backends import Backend

    class _Fake(Backend):
        def encode(self, text: str) -> list:
            return text.split(" ")

        def decode(self, units: list) -> str:
            return " ".join(units)

        def score_contexts(self, items):
            out = []
            for context, labels in items:
                scores = {}
                for key, label in labels.items():
                    digest = hashlib.sha256(f"{self.spec['model']}\x00{context}\x00{label}".encode()).digest()
                    scores[key] = -8.0 * int.from_bytes(digest[:6], "big") / 2**48
                out.append(scores)
            return out

    return _Fake


def build_project(*, n_items: int, n_hh: int, work: Path):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from annotation import services
    from annotation.importing.service import import_file
    from annotation.models import Assignment, Item, Membership, Project
    from annotation.workbench import services as wb
    from annotation.workbench.judgments import Judgment, JudgmentInvalid, ResponseLabel
    from jury import services as jury_services
    from jury.backends.base import _CACHE, _spec_key

    rng = random.Random(SEED)
    clock = FakeClock()
    with _Clocked(clock):
        clock.set(1, 9)
        services.roles_ensure_groups()
        versions = {v.taxonomy.slug: v for v in services.taxonomy_load_presets()}
        version = versions["aegis-2.0"]
        principles = services.principle_set_load_default()
        # a taxonomy's "Needs Caution" entry is a label, never a category people pick (annotation.judgments)
        from annotation.judgments import is_label_category

        codes = [code for code, name in version.categories.order_by("order", "code").values_list("code", "name")
                 if not is_label_category(name)]
        User = get_user_model()

        def user(name: str, group: str):
            u = User.objects.create_user(username=name, password=None)
            u.groups.add(Group.objects.get(name=group))
            return u

        researcher = user("rita", "researcher")
        annotators = [user(f"ann{i}", "annotator") for i in range(5)]
        project = services.project_create(
            slug="hashes", name="Export hashes ✓", taxonomy_version=version, principle_set=principles,
            mode=Project.Mode.RANKING_SAFETY, overlap=3, created_by=researcher,
        )
        for a in annotators:
            services.membership_set(project=project, user=a, role=Membership.Role.ANNOTATOR)

        # --- day 1: imports
        clock.set(1)
        own = work / "items.jsonl"
        own.write_bytes(b"".join(json.dumps(r, ensure_ascii=bool(i % 2)).encode() + b"\n"
                                 for i, r in enumerate(own_format_lines(rng, n_items, codes))))
        batch = import_file(project=project, path=own, source_name="items.jsonl", fmt="tribunal", user=researcher,
                            background=False)
        assert batch.status == "done", (batch.status, batch.errors)
        clock.set(2)
        hh = work / "hh.jsonl"
        hh.write_text("".join(json.dumps(r) + "\n" for r in hh_lines(rng, n_hh)))
        batch = import_file(project=project, path=hh, source_name="hh.jsonl", fmt="hh-rlhf", user=researcher,
                            background=False)
        assert batch.status == "done", (batch.status, batch.errors)
        n_total = Item.objects.filter(project=project).count()

        # --- day 3: pairwise votes on the workbench (overlap 3). The items were imported under ranking +
        # safety (a pairwise project refuses items of 1 or 3+ responses at import); the mode changes here.
        Project.objects.filter(pk=project.pk).update(mode=Project.Mode.PAIRWISE)
        project.refresh_from_db()
        clock.set(3)
        quota = max(2, n_total // 6)
        for a in annotators[:4]:
            for _ in range(quota):
                asg = wb.queue_next(project=project, annotator=a)
                if asg is None:
                    break
                if len(asg.shown_order) < 2:
                    wb.assignment_skip(project=project, annotator=a, item_id=asg.item_id, reason="other", note="one response")
                    continue
                if rng.random() < 0.02:
                    wb.assignment_flag(project=project, annotator=a, item_id=asg.item_id, kind="broken", note="garbled")
                    continue
                choice = rng.choices(["a", "b", "tie"], [5, 4, 1])[0]
                wb.annotation_submit(project=project, annotator=a, item_id=asg.item_id, judgment=Judgment(
                    pair_choice=choice, pair_strength=0 if choice == "tie" else rng.randint(1, 3)))

        # --- days 5-6: rankings with ties and safety labels, corrections, undos, flags
        Project.objects.filter(pk=project.pk).update(mode=Project.Mode.RANKING_SAFETY)
        project.refresh_from_db()

        def ranking_judgment(order: list[int]) -> Judgment:
            order = list(order)
            rng.shuffle(order)
            groups: list[list[int]] = []
            for rid in order:
                if groups and rng.random() < 0.3:
                    groups[-1].append(rid)
                else:
                    groups.append([rid])
            prompt = _safety_entry(rng, codes)
            return Judgment(
                ranking=groups, prompt_label=prompt["label"], prompt_categories=tuple(prompt["categories"]),
                response_labels={rid: ResponseLabel(**{**e, "categories": tuple(e["categories"])})
                                 for rid, e in ((rid, _safety_entry(rng, codes)) for rid in order)},
                confidence=rng.randint(1, 5), rationale=_text(rng, 3) if rng.random() < 0.3 else "",
            )

        for n, a in enumerate(annotators):
            clock.set(5 + n // 3, 10 + n)
            for _ in range(quota // 2):
                asg = wb.queue_next(project=project, annotator=a)
                if asg is None:
                    break
                if len(asg.shown_order) < 2:
                    wb.assignment_skip(project=project, annotator=a, item_id=asg.item_id, reason="unsure")
                    continue
                r = rng.random()
                if r < 0.03:
                    wb.assignment_flag(project=project, annotator=a, item_id=asg.item_id, kind="harmful_to_view")
                    continue
                try:
                    wb.annotation_submit(project=project, annotator=a, item_id=asg.item_id,
                                         judgment=ranking_judgment(asg.shown_order))
                except JudgmentInvalid as exc:
                    raise SystemExit(f"generated judgment rejected: {exc}") from None
                if r < 0.15:  # undo, then a corrected answer (supersedes the retraction)
                    back = wb.annotation_undo_last(project=project, annotator=a)
                    wb.annotation_submit(project=project, annotator=a, item_id=back.item_id,
                                         judgment=ranking_judgment(back.shown_order))
                elif r < 0.2:  # undo, and the item stays withdrawn (flagged)
                    back = wb.annotation_undo_last(project=project, annotator=a)
                    wb.assignment_flag(project=project, annotator=a, item_id=back.item_id, kind="broken")

        # --- day 8: the jury (two stand-in jurors, weighted rule)
        clock.set(8)
        fake = _fake_backend_class()
        jurors = []
        for name, weight in (("fake-a", 1.0), ("fake-b", 2.0)):
            juror = jury_services.juror_create(name=name, backend="openai", model=f"stand-in-{name}",
                                               endpoint="http://localhost:9/v1", prompt_version="v2", batch_size=16,
                                               max_length=256)
            _CACHE[_spec_key(juror.spec())] = fake(juror.spec())
            jurors.append((juror, weight))
        jury = jury_services.jury_create(name="stand-in-panel", jurors=jurors, rule="weighted")
        ids = list(Item.objects.filter(project=project).order_by("id").values_list("id", flat=True))
        for task, chosen in (("preference", ids[::2]), ("safety", ids[::3])):
            run = jury_services.jury_run_start(project=project, jury=jury, task=task, user=researcher,
                                               chunk_size=50, item_ids=chosen)
            run.refresh_from_db()
            assert run.status == "done", (task, run.status, run.errors)

        # --- days 10-11: adjudication, some of it twice
        clock.set(10)
        picked = rng.sample(ids, max(2, n_total // 20))
        for k, item_id in enumerate(picked):
            item = Item.objects.get(pk=item_id)
            order = list(item.responses.order_by("position").values_list("pk", flat=True))
            if len(order) < 2:
                continue
            wb.adjudication_record(project=project, adjudicator=researcher, item=item, judgment=ranking_judgment(order))
            if k % 4 == 0:
                clock.set(11)
                wb.adjudication_record(project=project, adjudicator=researcher, item=item,
                                       judgment=ranking_judgment(order))
                clock.set(10)
    from annotation.models import Annotation
    stats = {
        "items": n_total,
        "annotations": {s: Annotation.objects.filter(project=project, source=s).count()
                        for s in ("import", "human", "jury", "adjudication")},
        "retractions": Annotation.objects.filter(project=project, retracted=True).count(),
        "flagged_assignments": Assignment.objects.filter(project=project, status="flagged").count(),
        "flagged_metadata": Item.objects.filter(project=project, metadata__flagged=True).count(),
    }
    return project, codes, stats


# --- running and hashing -------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_combos(project, selected: dict[str, dict], root: Path) -> dict[str, dict[str, str]]:
    from exports import services

    manifest: dict[str, dict[str, str]] = {}
    for n, (name, opts) in enumerate(selected.items(), 1):
        folder = root / f"{n:04d}"
        export = services.export_request(project=project, options={"format": opts["format"], **opts},
                                         background=False, out_dir=folder)
        finished = services.export_run(export_id=export.pk)
        assert finished is not None  # None only for an export id that does not exist
        if finished.status != "done":
            manifest[name] = {"!failed": finished.error}
        else:
            manifest[name] = {p.relative_to(folder).as_posix(): _sha256(p)
                              for p in sorted(folder.rglob("*")) if p.is_file()}
        _log(f"[{n}/{len(selected)}] {name}: {len(manifest[name])} file(s)"
             + (f" FAILED: {finished.error[:100]}" if finished.status != "done" else ""))
    return manifest


def compare(old: dict, new: dict) -> list[str]:
    problems = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            problems.append(f"{name}: combo missing in this run")
            continue
        if name not in old:
            problems.append(f"{name}: combo not in the reference")
            continue
        a, b = old[name], new[name]
        for f in sorted(set(a) | set(b)):
            if a.get(f) != b.get(f):
                what = "only in the reference" if f not in b else "only in this run" if f not in a else "differs"
                detail = f" ({a.get(f)} -> {b.get(f)})" if f.startswith("!") else ""
                problems.append(f"{name}: {f} {what}{detail}")
    return problems


# --- databases -----------------------------------------------------------------------------------


def _pg_admin(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed._replace(path="/postgres").geturl(), parsed.path.lstrip("/")


def pg_create(url: str, drop_existing: bool) -> None:
    import psycopg

    admin, name = _pg_admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not drop_existing:
            raise SystemExit(f"database {name!r} exists; pass --drop-existing to replace it (it is dropped at the end)")
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(url: str) -> None:
    import psycopg

    admin, name = _pg_admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    global _QUIET
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the manifest here")
    parser.add_argument("--compare", type=Path, help="compare with this manifest; exit 1 listing every difference")
    parser.add_argument("--database-url", help="postgres://.../NAME: created for the run and dropped (default: SQLite)")
    parser.add_argument("--drop-existing", action="store_true", help="replace the PostgreSQL database if it exists")
    parser.add_argument("--only", help="regular expression: run only the combos whose name matches")
    parser.add_argument("--items", type=int, default=620, help="own-format items to import (plus 80 HH-RLHF items per 620)")
    parser.add_argument("--keep", type=Path, help="keep the exported folders (and the SQLite file) here")
    parser.add_argument("--list", action="store_true", help="print the combo names and exit")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    _QUIET = args.quiet

    if args.list:
        for name in combos(["S1", "S2", "S3"]):
            print(name)
        return 0

    t0 = time.perf_counter()
    if args.keep:
        work = args.keep.resolve()
        if work.exists() and any(work.iterdir()):
            raise SystemExit(f"--keep {work}: the folder must be empty or absent")
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="export-hashes-"))
    os.environ["TRIBUNAL_VAR_DIR"] = str(work / "var")
    (work / "var").mkdir(parents=True, exist_ok=True)  # the SQLite file's folder (settings only make the broker's)
    os.environ["EXPORT_DIR"] = str(work / "var" / "exports")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ.setdefault("SECRET_KEY", "export-hashes")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    if args.database_url:
        pg_create(args.database_url, args.drop_existing)
        os.environ["DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    try:
        import django

        django.setup()
        import logging

        logging.getLogger("celery").setLevel(logging.WARNING)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        t_build = time.perf_counter()
        project, codes, stats = build_project(n_items=args.items, n_hh=max(1, round(args.items * 80 / 620)), work=work)
        _log(f"database: {connection.vendor}; project built in {time.perf_counter() - t_build:.1f} s: {json.dumps(stats)}")
        every = combos(codes)
        selected = {k: v for k, v in every.items() if not args.only or re.search(args.only, k)}
        if not selected:
            raise SystemExit(f"no combo matches {args.only!r}")
        t_export = time.perf_counter()
        manifest = run_combos(project, selected, work / "combos")
        files = sum(len(v) for v in manifest.values())
        failed = sum(1 for v in manifest.values() if "!failed" in v)
        _log(f"{len(manifest)} combos, {files} files ({failed} combos failed on purpose or not: see '!failed'); "
             f"exports {time.perf_counter() - t_export:.1f} s, total {time.perf_counter() - t0:.1f} s")
        text = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        elif not args.compare:
            sys.stdout.write(text)
        if args.compare:
            old = json.loads(args.compare.read_text(encoding="utf-8"))
            if args.only:
                old = {k: v for k, v in old.items() if re.search(args.only, k)}
            problems = compare(old, manifest)
            if problems:
                print(f"{len(problems)} difference(s) against {args.compare}:", file=sys.stderr)
                for p in problems:
                    print("  " + p, file=sys.stderr)
                return 1
            _log(f"identical to {args.compare}: {len(manifest)} combos, {files} files")
        return 0
    finally:
        if args.database_url:
            from django.db import connections

            connections.close_all()
            pg_drop(args.database_url)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
