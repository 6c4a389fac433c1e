"""Writes for guards: request a training job, run it, resume it, cancel it; promote and retire
guards; store evaluations.

Contract: a guard is ``ready`` only after its whole folder was written to a staging folder and
moved into place (``GUARD_DIR/<name>-v<version>``); any failure, a cancel, or bad data ends the
guard ``failed`` with the error and removes the staging folder. ``guard_training_run`` is
idempotent: only a PENDING job is claimed, so a duplicate delivery does nothing.
"""
from __future__ import annotations

import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from annotation import jobs
from annotation.jobs import JobStatus, claim, hand_back_abandoned
from exports.guard.ml.config import GuardTrainConfig, base_label
from exports.guard.ml.data import GuardDataError
from exports.guard.models import GuardEvaluation, GuardModel, GuardTraining

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a training (or an evaluation) that killed its worker this many times is given up, not re-run forever
SOURCE_KINDS = {"file": GuardModel.Source.FILE, "export": GuardModel.Source.EXPORT, "project": GuardModel.Source.PROJECT}


class GuardError(ValueError):
    """A request the registry refuses (bad options, wrong state); the message says why."""


def guard_root() -> Path:
    return Path(settings.GUARD_DIR)


def guard_folder(guard_model: GuardModel) -> Path:
    """Deterministic per guard: a rerun of the same training overwrites, never duplicates."""
    return guard_root() / f"{guard_model.name}-v{guard_model.version}"


def _source_ref(spec: dict[str, Any]) -> str:
    return str(spec.get("path") or spec.get("slug") or "")


@transaction.atomic
def guard_training_request(
    *,
    name: str,
    taxonomy_version,
    source_spec: dict[str, Any],
    config: dict[str, Any] | None = None,
    user=None,
    background: bool = True,
    project=None,
    export=None,
    out_dir: Path | None = None,
) -> GuardTraining:
    """Register guard ``name`` v(n+1) as ``training`` with its job. Background jobs are enqueued on
    the ``gpu`` queue after commit; the caller of a foreground job runs ``guard_training_run``."""
    try:
        cfg = GuardTrainConfig.from_dict(config or {})
    except (TypeError, ValueError) as exc:
        raise GuardError(str(exc)) from None
    kind = source_spec.get("kind")
    if kind not in SOURCE_KINDS:
        raise GuardError(f"Unknown data source kind {kind!r}; use file, export or project.")
    # Lock the name's rows so two requests cannot both take version n+1 (the unique constraint
    # would refuse the second anyway; this makes it wait instead of fail).
    list(GuardModel.objects.select_for_update().filter(name=name).values_list("pk", flat=True))
    version = (GuardModel.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0) + 1
    try:
        guard_model = GuardModel.objects.create(
            name=name, version=version, taxonomy_version=taxonomy_version, base=base_label(cfg.base),
            recipe=cfg.recipe, source=SOURCE_KINDS[kind], source_ref=_source_ref(source_spec), project=project,
            export=export, created_by=user if user is not None and user.is_authenticated else None,
        )
    except IntegrityError as exc:  # pragma: no cover - guarded by the lock above
        raise GuardError(f"Could not register {name} v{version}: {exc}") from None
    job = GuardTraining.objects.create(guard_model=guard_model, config=cfg.to_dict(), source_spec=dict(source_spec),
                                       background=background, out_dir=str(out_dir) if out_dir else "")
    if background:
        from exports.guard.tasks import guard_train_task

        guard_train_task.delay_on_commit(job.pk)
    return job


def guard_training_run(*, training_id: int) -> GuardTraining | None:
    """Run one training job to its end (in the worker, or in-process for ``train_guard``).

    Not one transaction on purpose: it trains for minutes and reports progress as it goes.
    """
    if not claim(model=GuardTraining, pk=training_id, error="", attempts=F("attempts") + 1):
        return GuardTraining.objects.filter(pk=training_id).first()
    job = GuardTraining.objects.select_related("guard_model__taxonomy_version__taxonomy").get(pk=training_id)
    guard_model = job.guard_model
    if job.attempts > MAX_ATTEMPTS:
        _fail(job, f"Gave up after {MAX_ATTEMPTS} attempts: the training killed its worker each time.")
        return _reload(job)
    final = Path(job.out_dir) if job.out_dir else guard_folder(guard_model)
    staging = final.parent / f".{final.name}.partial-{os.getpid()}"
    try:
        manifest = _train(job, staging)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except Exception as exc:  # a poisoned job must end FAILED, never hang in RUNNING or crash-loop
        shutil.rmtree(staging, ignore_errors=True)
        from exports.guard.ml.train import GuardCancelled

        if isinstance(exc, GuardCancelled):
            _fail(job, "Cancelled.", job_status=None)
        elif isinstance(exc, (GuardDataError, ValueError, FileNotFoundError)):
            _fail(job, str(exc))
        else:
            logger.exception("guard training %s failed", training_id)
            _fail(job, f"Training failed: {type(exc).__name__}: {exc}")
        return _reload(job)
    with transaction.atomic():
        done = GuardTraining.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.DONE, finished_at=timezone.now(), phase="done",
            val_metrics=manifest["metrics"]["validation"] or {},
        )
        if done == 1:
            counts = manifest["training_data"]["counts"]
            GuardModel.objects.filter(pk=guard_model.pk, status=GuardModel.Status.TRAINING).update(
                status=GuardModel.Status.READY, path=str(final), data_sha256=manifest["training_data"]["sha256"],
                counts=counts, metrics={"validation": manifest["metrics"]["validation"], "evaluations": {}},
                error="",
            )
    if done != 1:  # cancelled while the folder was being moved: it must not stay
        shutil.rmtree(final, ignore_errors=True)
        _fail(job, "Cancelled.", job_status=None)
    elif (job.source_spec or {}).get("retrain_of"):
        _compare_after_retrain(job)
    return _reload(job)


def _train(job: GuardTraining, staging: Path) -> dict[str, Any]:
    from exports.guard.ml.train import main
    from exports.guard.sources import load_source, taxonomy_codes

    guard_model = job.guard_model
    version = guard_model.taxonomy_version
    jobs.progress(model=GuardTraining, pk=job.pk, phase="loading data")
    examples, provenance = load_source(job.source_spec, taxonomy_version=version)
    cfg = GuardTrainConfig.from_dict(job.config)
    if settings.TRIBUNAL_DEVICE not in ("auto", "") and cfg.device == "cpu":
        cfg.device = settings.TRIBUNAL_DEVICE
    if staging.exists():
        shutil.rmtree(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)

    def progress(**fields: Any) -> None:
        jobs.progress(model=GuardTraining, pk=job.pk, **{k: v for k, v in fields.items() if v is not None})

    def should_stop() -> bool:
        return GuardTraining.objects.filter(pk=job.pk, status=JobStatus.CANCELLED).exists()

    taxonomy = {"slug": version.taxonomy.slug, "name": version.taxonomy.name, "version": version.version}
    return main(cfg, examples, codes=taxonomy_codes(version), taxonomy=taxonomy, out_dir=staging,
                provenance={"name": guard_model.name, "version": guard_model.version, "source": provenance},
                progress=progress, should_stop=should_stop,
                category_names=dict(version.categories.values_list("code", "name")))


def _fail(job: GuardTraining, error: str, *, job_status: str | None = JobStatus.FAILED) -> None:
    with transaction.atomic():
        if job_status is not None:
            GuardTraining.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
                status=job_status, error=error, finished_at=timezone.now()
            )
        else:
            GuardTraining.objects.filter(pk=job.pk).update(error=error)
        GuardModel.objects.filter(pk=job.guard_model_id, status=GuardModel.Status.TRAINING).update(
            status=GuardModel.Status.FAILED, error=error
        )


def _reload(job: GuardTraining) -> GuardTraining:
    return GuardTraining.objects.select_related("guard_model").get(pk=job.pk)


def guard_training_cancel(*, training: GuardTraining) -> bool:
    """Cancel a pending or running training. A pending one's guard fails at once; a running one
    stops at its next progress report and removes its staging folder."""
    cancelled = jobs.cancel(model=GuardTraining, pk=training.pk, error="Cancelled.")
    if cancelled:
        GuardModel.objects.filter(pk=training.guard_model_id, status=GuardModel.Status.TRAINING).update(
            status=GuardModel.Status.FAILED, error="Cancelled."
        )
    return cancelled


def guard_jobs_resume(*, stale_after_s: int | None = None) -> list[int]:
    """Re-queue background trainings whose worker died (called when a gpu worker starts). The rerun
    starts the training over into the same deterministic folder; ``attempts`` bounds the reruns."""
    from exports.guard.tasks import guard_train_task

    return hand_back_abandoned(
        queryset=GuardTraining.objects.filter(background=True),
        enqueue=guard_train_task.delay,
        stale_after=timedelta(seconds=stale_after_s) if stale_after_s is not None else None,
        reset={"step": 0, "phase": "", "loss": None},
    )


@transaction.atomic
def guard_model_promote(*, guard_model: GuardModel) -> GuardModel:
    """Make this guard the promoted one of its taxonomy version (the previous one goes back to ready)."""
    locked = GuardModel.objects.select_for_update().get(pk=guard_model.pk)
    if locked.status not in (GuardModel.Status.READY, GuardModel.Status.PROMOTED):
        raise GuardError(f"Only a ready guard can be promoted; {locked} is {locked.status}.")
    GuardModel.objects.filter(taxonomy_version=locked.taxonomy_version, status=GuardModel.Status.PROMOTED).exclude(
        pk=locked.pk).update(status=GuardModel.Status.READY)
    locked.status = GuardModel.Status.PROMOTED
    locked.save(update_fields=["status"])
    return locked


@transaction.atomic
def guard_model_retire(*, guard_model: GuardModel) -> GuardModel:
    locked = GuardModel.objects.select_for_update().get(pk=guard_model.pk)
    if locked.status not in (GuardModel.Status.READY, GuardModel.Status.PROMOTED):
        raise GuardError(f"Only a ready or promoted guard can be retired; {locked} is {locked.status}.")
    locked.status = GuardModel.Status.RETIRED
    locked.save(update_fields=["status"])
    return locked


@transaction.atomic
def guard_model_store_evaluation(*, guard_model: GuardModel, data_name: str, report: dict[str, Any]) -> GuardModel:
    """Keep an evaluation report on the guard under ``data_name`` (a rerun replaces it)."""
    locked = GuardModel.objects.select_for_update().get(pk=guard_model.pk)
    metrics = dict(locked.metrics or {})
    evaluations = dict(metrics.get("evaluations") or {})
    evaluations[data_name] = {**report, "evaluated_at": timezone.now().isoformat(timespec="seconds")}
    metrics["evaluations"] = evaluations
    locked.metrics = metrics
    locked.save(update_fields=["metrics"])
    return locked


def guard_evaluation_report(*, folder: str | Path, source_spec: dict[str, Any], data_name: str,
                            taxonomy_version=None) -> dict[str, Any]:
    """Evaluate the guard in ``folder`` on a data source (worker or command; loads the model). The
    data's categories are read under their own taxonomy (``taxonomy_version``, else the project's,
    the export's, OpenAI moderation's for its samples, else the guard's) and the guard's categories
    are mapped onto it through the crosswalk; the report names the mapping used."""
    from exports.guard.manifest import read_manifest
    from exports.guard.sources import load_for_evaluation

    examples, data_tax, _map, _walk = load_for_evaluation(
        source_spec, manifest=read_manifest(folder), taxonomy_version=taxonomy_version)
    return _evaluate_examples(folder=folder, examples=examples, data_tax=data_tax, source_spec=source_spec,
                              data_name=data_name)


def _evaluate_examples(*, folder, examples, data_tax, source_spec: dict[str, Any], data_name: str,
                       guard=None) -> dict[str, Any]:
    """The report of one guard (``guard``: already loaded, else loaded from ``folder``) on examples
    read under ``data_tax``, its categories through the crosswalk, with the data block every stored
    report carries."""
    from exports.guard.manifest import read_manifest
    from exports.guard.ml.evaluate import evaluate_folder
    from exports.guard.sources import category_map_for

    category_map, walk = category_map_for(guard.manifest if guard is not None else read_manifest(folder), data_tax)
    report = evaluate_folder(folder, examples, category_map=category_map, guard=guard)
    report["data"] = {"name": data_name, "source": source_spec, "examples": len(examples),
                      "taxonomy": f"{data_tax.taxonomy.slug} v{data_tax.version}",
                      "categories": f"evaluated under {data_tax.taxonomy.slug} v{data_tax.version}: {walk.describe()}"}
    return report


# --- evaluation jobs (job kind "guard-evaluation") ---------------------------------------------------
EVAL_CHUNK = 256  # examples scored between two progress reports / cancellation checks


class _EvaluationStopped(Exception):
    """The evaluation job was cancelled (or taken away) while it scored."""


class _ChunkedGuard:
    """A loaded guard whose ``predict`` scores in chunks of ``chunk`` examples and calls
    ``on_chunk(done, total)`` before the first and after every chunk (which may raise to stop), so
    ``evaluate_folder`` reports progress and can be cancelled without a copy of its code."""

    def __init__(self, guard, *, on_chunk, chunk: int = EVAL_CHUNK):
        self.guard, self.on_chunk, self.chunk = guard, on_chunk, max(1, int(chunk))
        self.manifest = guard.manifest

    def predict(self, pairs, **kwargs: Any):
        import numpy as np

        total = len(pairs)
        self.on_chunk(0, total)
        ps, pcs = [], []
        for start in range(0, total, self.chunk):
            p, pc = self.guard.predict(pairs[start:start + self.chunk], **kwargs)
            ps.append(np.asarray(p))
            pcs.append(np.asarray(pc))
            self.on_chunk(min(start + self.chunk, total), total)
        if not ps:
            return np.zeros(0), np.zeros((0, len(self.manifest.codes)))
        return np.concatenate(ps), np.concatenate(pcs)


def guard_evaluation_request(*, guard_model: GuardModel, source_spec: dict[str, Any] | None = None,
                             data_name: str | None = None, project=None, user=None, background: bool = True,
                             steps_total: int = 0) -> GuardEvaluation:
    """Create an evaluation job of a usable guard and, for a background job, enqueue it on the
    ``gpu`` queue after commit (the caller of a foreground job runs ``guard_evaluation_run``).
    ``project`` alone means its current consensus (stored as ``project:<slug>``). One active job
    per guard and data name: a second request while one is pending or running is refused."""
    if not guard_model.usable:
        raise GuardError(f"Only a ready or promoted guard can be evaluated; {guard_model} is {guard_model.status}.")
    if source_spec is None:
        if project is None:
            raise GuardError("Say what to evaluate the guard on.")
        source_spec = {"kind": "project", "slug": project.slug}
        data_name = data_name or f"project:{project.slug}"
    if source_spec.get("kind") not in SOURCE_KINDS:
        raise GuardError(f"Unknown data source kind {source_spec.get('kind')!r}; use file, export or project.")
    data_name = (data_name or f"{source_spec['kind']}:{_source_ref(source_spec)}")[:200]
    with transaction.atomic():
        list(GuardModel.objects.select_for_update().filter(pk=guard_model.pk).values_list("pk", flat=True))
        if GuardEvaluation.objects.filter(guard_model=guard_model, data_name=data_name, status__in=jobs.ACTIVE).exists():
            raise GuardError(f"{guard_model.name} v{guard_model.version} is already being evaluated on {data_name}; "
                             "wait for it or cancel it.")
        job = GuardEvaluation.objects.create(
            guard_model=guard_model, source_spec=dict(source_spec), data_name=data_name, background=background,
            steps_total=steps_total, created_by=user if user is not None and user.is_authenticated else None,
        )
        if background:
            from exports.guard.tasks import guard_evaluate_task

            guard_evaluate_task.delay_on_commit(job.pk)
    return job


def guard_evaluation_legacy(*, guard_model_id: int, project_slug: str) -> GuardEvaluation | None:
    """A consensus evaluation queued before evaluations were jobs ((guard id, project slug) on
    ``exports.guard.evaluate``): request it as a job now (None when the guard or project is gone,
    the guard is not usable, or it is already being evaluated there)."""
    from annotation.models import Project

    guard_model = GuardModel.objects.filter(pk=guard_model_id).first()
    project = Project.objects.filter(slug=project_slug).first()
    if guard_model is None or project is None:
        return None
    try:
        return guard_evaluation_request(guard_model=guard_model, project=project)
    except GuardError as exc:
        logger.warning("legacy evaluation of guard %s on %s dropped: %s", guard_model_id, project_slug, exc)
        return None


def guard_evaluation_run(*, evaluation_id: int, chunk: int = EVAL_CHUNK, on_chunk=None) -> GuardEvaluation | None:
    """Run one evaluation job to its end (in the gpu worker, or in-process): claim it (only a
    PENDING job: a duplicate delivery does nothing), load the data and the guard ("loading data"),
    score in chunks ("scoring", step = examples scored), checking for a cancel between chunks,
    then store the report on the guard and end DONE. Bad data or a broken guard folder end it
    FAILED with the error (a previously stored report of the same name stays); a cancel ends it
    CANCELLED with nothing stored. A staged upload is removed when the job ends, whichever way.
    ``on_chunk(done, total)`` is called after each progress report (tests, commands)."""
    if not claim(model=GuardEvaluation, pk=evaluation_id, error="", attempts=F("attempts") + 1):
        return GuardEvaluation.objects.filter(pk=evaluation_id).first()
    job = GuardEvaluation.objects.select_related("guard_model__taxonomy_version__taxonomy").get(pk=evaluation_id)
    try:
        _evaluation_run(job, chunk=chunk, on_chunk=on_chunk)
    finally:
        _remove_staged(job.source_spec or {})
    return GuardEvaluation.objects.select_related("guard_model").get(pk=job.pk)


def _evaluation_run(job: GuardEvaluation, *, chunk: int, on_chunk) -> None:
    from exports.guard.manifest import GuardManifestError

    guard_model = job.guard_model
    if job.attempts > MAX_ATTEMPTS:
        _evaluation_fail(job, f"Gave up after {MAX_ATTEMPTS} attempts: the evaluation killed its worker each time.")
        return
    if not guard_model.usable or not guard_model.path:
        _evaluation_fail(job, f"{guard_model.name} v{guard_model.version} is {guard_model.get_status_display().lower()}; "
                              "only a ready or promoted guard can be evaluated.")
        return

    def report_chunk(done: int, total: int) -> None:
        if not GuardEvaluation.objects.filter(pk=job.pk, status=JobStatus.RUNNING).exists():
            raise _EvaluationStopped
        jobs.progress(model=GuardEvaluation, pk=job.pk, phase="scoring", step=done, steps_total=total)
        if on_chunk is not None:
            on_chunk(done, total)

    try:
        from exports.guard.manifest import read_manifest
        from exports.guard.ml.modeling import load_guard
        from exports.guard.sources import load_for_evaluation
        from jury.backends.local import resolve_device

        jobs.progress(model=GuardEvaluation, pk=job.pk, phase="loading data", step=0)
        examples, data_tax, _map, _walk = load_for_evaluation(job.source_spec, manifest=read_manifest(guard_model.path))
        jobs.progress(model=GuardEvaluation, pk=job.pk, steps_total=len(examples))
        guard = _ChunkedGuard(load_guard(guard_model.path, device=str(resolve_device(None))), on_chunk=report_chunk,
                              chunk=chunk)
        report = _evaluate_examples(folder=guard_model.path, examples=examples, data_tax=data_tax,
                                    source_spec=job.source_spec, data_name=job.data_name, guard=guard)
    except _EvaluationStopped:
        return  # cancelled: the cancel set the status; nothing is stored
    except (GuardDataError, GuardManifestError, ValueError, FileNotFoundError) as exc:
        _evaluation_fail(job, str(exc))
        return
    except Exception as exc:  # a poisoned job must end FAILED, never hang in RUNNING or crash-loop
        logger.exception("guard evaluation %s failed", job.pk)
        _evaluation_fail(job, f"Evaluation failed: {type(exc).__name__}: {exc}")
        return
    with transaction.atomic():
        done = GuardEvaluation.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.DONE, phase="done", finished_at=timezone.now(), heartbeat_at=timezone.now())
        if done == 1:  # not cancelled meanwhile: the cancel's UPDATE waits for this one, then finds it DONE
            guard_model_store_evaluation(guard_model=guard_model, data_name=job.data_name, report=report)


def _evaluation_fail(job: GuardEvaluation, error: str) -> None:
    GuardEvaluation.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, error=error, finished_at=timezone.now())


def _remove_staged(spec: dict[str, Any]) -> None:
    """Remove an uploaded file staged for an evaluation (only inside the staging folder)."""
    path = Path(str(spec.get("path", "")))
    if spec.get("staged") and path.name and path.parent.resolve() == guard_eval_upload_dir().resolve():
        path.unlink(missing_ok=True)


def guard_evaluation_cancel(*, evaluation: GuardEvaluation) -> bool:
    """Cancel a pending or running evaluation; a running one stops before its next chunk and
    stores nothing. A staged upload is removed at once (a pending job has no worker to do it)."""
    cancelled = jobs.cancel(model=GuardEvaluation, pk=evaluation.pk, error="Cancelled.")
    if cancelled:
        _remove_staged(evaluation.source_spec or {})
    return cancelled


def guard_evaluations_resume(*, stale_after_s: int | None = None) -> list[int]:
    """Re-queue background evaluations whose worker died (called when a gpu worker starts); the
    rerun scores from the start, ``attempts`` bounds the reruns."""
    from exports.guard.tasks import guard_evaluate_task

    return hand_back_abandoned(
        queryset=GuardEvaluation.objects.filter(background=True),
        enqueue=guard_evaluate_task.delay,
        stale_after=timedelta(seconds=stale_after_s) if stale_after_s is not None else None,
        reset={"step": 0, "phase": ""},
    )



# --- closing the loop: guard jury runs raise priorities; retrain compares versions ------------------


def guard_run_review(*, run) -> int:
    """After a safety jury run that seated guard jurors: raise the queue priority of every item
    where a guard is unsure (near its threshold, or an unsure category) or disagrees with the
    people's consensus, with a reason the adjudication page shows (``exports.guard.loop``).

    Called by ``jury.services.finalize`` (a registered after-run hook) once the run's items are
    decided. Reads the stored verdicts only (no model is loaded). Idempotent: a raise is once per
    (item, "guard", "<name> v<version>"), so a resumed or repeated finalisation raises nothing
    twice. Returns how many items were found worth raising."""
    from annotation import services as annotation_services
    from annotation.models import Item
    from exports.guard import selectors
    from exports.guard.loop import LoopPolicy, TargetScore, item_raise, response_names, target_findings
    from exports.guard.manifest import GuardManifestError, read_manifest
    from jury.models import Verdict

    if run.task != "safety":
        return 0
    jurors = [j for j in (run.config or {}).get("jurors", []) if (j.get("spec") or {}).get("backend") == "guard"]
    if not jurors:
        return 0
    policy = LoopPolicy.from_settings(getattr(settings, "GUARD_LOOP", None))
    item_ids = {i for ids in run.chunks.values_list("item_ids", flat=True) for i in ids}
    consensus: dict[str, dict[int, dict]] = {}
    raised = 0
    for juror in jurors:
        folder = juror["spec"].get("model") or ""
        try:
            manifest = read_manifest(folder)
        except GuardManifestError as exc:
            logger.warning("guard review of run %s: juror %s skipped: %s", run.pk, juror.get("name"), exc)
            continue
        registered = selectors.guard_for_folder(folder=folder)
        if registered is not None:
            label = f"{registered.name} v{registered.version}"
            training = getattr(registered, "training", None)
            needs_caution = (training.source_spec if training else {}).get("needs_caution", "defensive")
        else:
            label = f"{manifest.data.get('name') or Path(folder).name} v{manifest.data.get('version') or '?'}"
            needs_caution = "defensive"
        if needs_caution not in consensus:
            consensus[needs_caution] = selectors.human_safety_consensus(
                project=run.project, item_ids=item_ids, needs_caution=needs_caution)
        people = consensus[needs_caution]
        by_item: dict[int, list] = {}
        for item_id, response_id, p, cats in (
            Verdict.objects.filter(run=run, juror_id=juror["id"]).order_by("item_id", "target")
            .values_list("item_id", "response_id", "p_positive", "category_probs")
        ):
            if p is None:
                continue
            by_item.setdefault(item_id, []).append((response_id, p, cats or {}))
        items = Item.objects.in_bulk(list(by_item))
        for item_id, rows in by_item.items():
            human = people.get(item_id) or {"prompt": None, "responses": {}, "positions": {}}
            names = response_names(human["positions"])
            findings = []
            for response_id, p, cats in sorted(rows, key=lambda r: (r[0] is not None, human["positions"].get(r[0], 0))):
                target = TargetScore(
                    where="the prompt" if response_id is None else names.get(response_id, "a response"),
                    p_unsafe=p, category_probs=cats,
                    human=human["prompt"] if response_id is None else human["responses"].get(response_id),
                )
                findings += target_findings(target, threshold=manifest.threshold, policy=policy)
            decided = item_raise(label, findings)
            if decided is None or item_id not in items:
                continue
            priority, reason = decided
            annotation_services.item_priority_raise(item=items[item_id], priority=priority, reason=reason,
                                                    source="guard", source_detail=label)
            raised += 1
    return raised


def guard_retrain_request(
    *, guard_model: GuardModel, user=None, project=None, config: dict[str, Any] | None = None,
    background: bool = True, out_dir: Path | None = None,
) -> GuardTraining:
    """Train the next version of ``guard_model``'s name from ``project``'s CURRENT consensus (by
    default the project it was trained from) with the same recipe and configuration (seed
    included; ``config`` overrides single options). When the new version is ready, the training
    job evaluates both versions on the same sets (``guard_versions_compare``)."""
    project = project or guard_model.project
    if project is None:
        raise GuardError(f"{guard_model.name} v{guard_model.version} was not trained from a project; "
                         "say which project's consensus to retrain it on.")
    if project.taxonomy_version_id != guard_model.taxonomy_version_id:
        raise GuardError(f"Project {project.slug} is under another taxonomy version than {guard_model.name} "
                         f"v{guard_model.version}; retrain under the same one.")
    if guard_model.status == GuardModel.Status.TRAINING:
        raise GuardError(f"{guard_model.name} v{guard_model.version} is still training.")
    previous = GuardTraining.objects.filter(guard_model=guard_model).first()
    cfg = dict(previous.config) if previous is not None else {"recipe": guard_model.recipe}
    cfg.update(config or {})
    old_spec = dict(previous.source_spec) if previous is not None else {}
    spec: dict[str, Any] = {"kind": "project", "slug": project.slug,
                            "needs_caution": old_spec.get("needs_caution", "defensive")}
    if old_spec.get("kind") == "project" and old_spec.get("source"):
        spec["source"] = old_spec["source"]
    spec["retrain_of"] = {"id": guard_model.pk, "name": guard_model.name, "version": guard_model.version}
    return guard_training_request(
        name=guard_model.name, taxonomy_version=guard_model.taxonomy_version, source_spec=spec, config=cfg,
        user=user, background=background, project=project, out_dir=out_dir,
    )


def _taxonomy_of_report(report: dict[str, Any], default):
    """The taxonomy version an evaluation read its data under ("slug vN" in its data block)."""
    from annotation.models import TaxonomyVersion

    text = str(((report or {}).get("data") or {}).get("taxonomy") or "")
    slug, _, number = text.rpartition(" v")
    if slug and number.isdigit():
        found = TaxonomyVersion.objects.select_related("taxonomy").filter(taxonomy__slug=slug, version=int(number)).first()
        if found is not None:
            return found
    return default


def guard_versions_compare(*, guard_model: GuardModel, previous: GuardModel, project=None) -> GuardModel:
    """Evaluate ``guard_model`` and ``previous`` on the same sets (every evaluation stored on
    ``previous`` that says where its data came from, plus ``project``'s current consensus), store
    each report on its guard, and store the deltas on ``guard_model`` under
    ``metrics["comparison"]`` (``exports.guard.loop.metric_deltas``). A set that cannot be read any
    more (a moved file) is stored as an error on the new version only, the previous one keeping its
    report, and is left out of the deltas. Worker only (loads both guards)."""
    from exports.guard.loop import metric_deltas
    from exports.guard.ml.modeling import load_guard
    from exports.guard.sources import load_source

    sets: dict[str, tuple[dict[str, Any], Any]] = {}
    for name, report in sorted(((previous.metrics or {}).get("evaluations") or {}).items()):
        source = ((report or {}).get("data") or {}).get("source")
        if isinstance(source, dict) and source.get("kind") in SOURCE_KINDS:
            sets[name] = (source, _taxonomy_of_report(report, previous.taxonomy_version))
    if project is not None:
        training = GuardTraining.objects.filter(guard_model=guard_model).first()
        needs_caution = (training.source_spec if training else {}).get("needs_caution", "defensive")
        sets[f"project:{project.slug}"] = ({"kind": "project", "slug": project.slug, "needs_caution": needs_caution},
                                           project.taxonomy_version)
    guards = [g for g in (guard_model, previous) if g.usable and g.path and Path(g.path).is_dir()]
    loaded = {g.pk: load_guard(g.path) for g in guards}
    for name, (spec, data_tax) in sets.items():
        try:
            examples, _ = load_source(spec, taxonomy_version=data_tax)
        except (GuardDataError, ValueError, FileNotFoundError) as exc:
            # said on the new version; the previous one keeps the report it had
            guard_model_store_evaluation(guard_model=guard_model, data_name=name,
                                         report={"error": str(exc), "data": {"name": name, "source": spec}})
            continue
        for g in guards:
            report = _evaluate_examples(folder=g.path, examples=examples, data_tax=data_tax, source_spec=spec,
                                        data_name=name, guard=loaded[g.pk])
            guard_model_store_evaluation(guard_model=g, data_name=name, report=report)
    with transaction.atomic():
        current = GuardModel.objects.select_for_update().get(pk=guard_model.pk)
        before = GuardModel.objects.get(pk=previous.pk)
        metrics = dict(current.metrics or {})
        metrics["comparison"] = {
            "previous": {"id": before.pk, "name": before.name, "version": before.version},
            "sets": metric_deltas(metrics, before.metrics or {}),
            "compared_at": timezone.now().isoformat(timespec="seconds"),
        }
        current.metrics = metrics
        current.save(update_fields=["metrics"])
    return current


def _compare_after_retrain(job: GuardTraining) -> None:
    """A retrain's job, once its guard is ready: compare it with the version it retrains."""
    origin = (job.source_spec or {}).get("retrain_of") or {}
    previous = GuardModel.objects.filter(pk=int(origin.get("id") or 0)).first()
    guard_model = GuardModel.objects.select_related("project__taxonomy_version__taxonomy").get(pk=job.guard_model_id)
    if previous is None or not guard_model.usable:
        return
    try:
        jobs.progress(model=GuardTraining, pk=job.pk, phase="comparing versions")
        guard_versions_compare(guard_model=guard_model, previous=previous, project=guard_model.project)
    except Exception:  # the new version stays ready; the page says the comparison is missing
        logger.exception("comparing %s with %s failed", guard_model, previous)
    finally:
        jobs.progress(model=GuardTraining, pk=job.pk, phase="done")
# --- evaluation on an uploaded labelled file ---------------------------------------------------------
EVAL_UPLOAD_SUFFIXES = (".jsonl.gz", ".json.gz", ".csv.gz", ".jsonl", ".json", ".csv")


def guard_eval_upload_dir() -> Path:
    """Where uploaded evaluation files wait for the gpu worker (never served; removed when their
    evaluation job ends, whichever way)."""
    return Path(getattr(settings, "GUARD_EVAL_UPLOAD_DIR", None) or Path(settings.VAR_DIR) / "guard-evaluations")


def _check_evaluation_file(path: Path, original: str, taxonomy_version, needs_caution: str) -> int:
    """Read the whole file the way the worker will (sources.read_labelled_file) under the import
    limits (IMPORT_MAX_LINE_BYTES per line, IMPORT_MAX_UNPACKED_BYTES / IMPORT_MAX_GZIP_RATIO for
    .gz); returns the number of examples. Every problem is a GuardError naming the upload and line."""
    import csv

    from annotation.importing.reader import ErrorLog, LineReader
    from exports.guard.sources import category_resolver, read_labelled_file

    errors = ErrorLog(cap=1)
    for _line in LineReader(path, max_line_bytes=settings.IMPORT_MAX_LINE_BYTES, errors=errors):
        if errors:
            break
    if errors:
        first = errors.items[0]
        raise GuardError(f"{original}, line {first['line']}: {first['error']}")
    try:
        examples = read_labelled_file(path, resolve=category_resolver(taxonomy_version), needs_caution=needs_caution)
    except GuardDataError as exc:
        raise GuardError(str(exc).replace(str(path), original)) from None
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise GuardError(f"{original}: cannot be read as {path.suffix.lstrip('.')} ({exc})") from None
    return len(examples)


def guard_evaluation_upload_request(*, guard_model: GuardModel, upload, needs_caution: str = "defensive",
                                    user=None) -> tuple[GuardEvaluation, int]:
    """Stage an uploaded labelled file (own JSONL/CSV with ``label``/``categories``, Aegis rows,
    OpenAI moderation samples; categories read under the guard's taxonomy version), check every
    line now, and request its evaluation job (``guard_evaluation_request``; the report is stored
    as ``file:<file name>``). Returns (the job, the number of examples). A bad file raises
    GuardError naming the line, and nothing is kept; the job removes the staged file when it ends."""
    import uuid

    if not guard_model.usable:
        raise GuardError(f"Only a ready or promoted guard can be evaluated; {guard_model} is {guard_model.status}.")
    if needs_caution not in ("defensive", "permissive"):
        raise GuardError(f"needs_caution {needs_caution!r}: use defensive or permissive.")
    original = Path(str(getattr(upload, "name", "") or "upload")).name
    suffix = next((s for s in EVAL_UPLOAD_SUFFIXES if original.lower().endswith(s)), None)
    if suffix is None:
        raise GuardError(f"{original}: use a .jsonl or .csv file (or a .gz of either).")
    folder = guard_eval_upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f"guard{guard_model.pk}-{uuid.uuid4().hex}{suffix}"
    try:
        with open(staged, "xb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        count = _check_evaluation_file(staged, original, guard_model.taxonomy_version, needs_caution)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    data_name = f"file:{original[:150]}"
    spec = {"kind": "file", "path": str(staged), "filename": original, "needs_caution": needs_caution, "staged": True}
    try:
        job = guard_evaluation_request(guard_model=guard_model, source_spec=spec, data_name=data_name, user=user,
                                       steps_total=count)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return job, count
