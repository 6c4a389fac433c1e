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
from exports.guard.models import GuardModel, GuardTraining

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a training that killed its worker this many times is given up, not re-run forever
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


def guard_evaluation_request(*, guard_model: GuardModel, project) -> None:
    """Queue an evaluation of a usable guard on ``project``'s current consensus (gpu queue, after
    commit); the report is stored on the guard under ``project:<slug>``."""
    if not guard_model.usable:
        raise GuardError(f"Only a ready or promoted guard can be evaluated; {guard_model} is {guard_model.status}.")
    from exports.guard.tasks import guard_evaluate_task

    transaction.on_commit(lambda: guard_evaluate_task.delay(guard_model.pk, project.slug))


def guard_model_evaluate(*, guard_model_id: int, source_spec: dict[str, Any], data_name: str) -> GuardModel | None:
    """Evaluate a guard on a data source and store the report (in the worker; idempotent: a rerun
    replaces the stored report). Categories are scored only under the guard's own taxonomy version."""
    from exports.guard.ml.evaluate import evaluate_folder
    from exports.guard.sources import load_source

    guard_model = GuardModel.objects.select_related("taxonomy_version__taxonomy").filter(pk=guard_model_id).first()
    if guard_model is None or not guard_model.usable:
        return guard_model
    try:
        examples, _ = load_source(source_spec, taxonomy_version=guard_model.taxonomy_version)
        report = evaluate_folder(guard_model.path, examples)
    except (GuardDataError, ValueError, FileNotFoundError) as exc:
        report = {"error": str(exc)}
    report["data"] = {"name": data_name, "source": source_spec}
    return guard_model_store_evaluation(guard_model=guard_model, data_name=data_name, report=report)
