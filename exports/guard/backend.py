"""The ``guard`` model backend: a trained guard folder sitting on the jury as one more juror.

Registered in jury's backend registry (``exports.guard.apps``) by dotted path, so registering
imports no torch; a worker imports this module when it first builds a guard juror. The spec's
``model`` is the guard folder (its ``guard.json`` is checked when the spec is validated, without
torch).

It answers the **safety** task only, with one classifier pass per request instead of label
log-probabilities: ``safe`` / ``unsafe`` get log(1 - p) / log(p) with p the guard's calibrated
P(unsafe), and each ``cat:<code>`` continuation gets log(p) + log(q_code), q being the guard's
per-category probabilities normalised over the project's categories. ``jury.judging`` then
recovers exactly P(unsafe) = p and P(code) = p * q_code, as for any juror. A category the guard has
no head for (another taxonomy version) gets a negligible probability.
"""
from __future__ import annotations

import math
from typing import Any

from exports.guard.manifest import GuardManifestError, read_manifest
from jury.backends.base import Backend, JudgeRequest, JudgeResult
from jury.judging import CAT

_FLOOR = 1e-6


def guard_spec_errors(spec: dict[str, Any]) -> dict[str, str]:
    """Spec validation (web process, no torch): the model must be a readable guard folder."""
    try:
        read_manifest(spec.get("model") or "")
    except GuardManifestError as exc:
        return {"model": str(exc)}
    return {}


class GuardBackend(Backend):
    def __init__(self, spec: dict[str, Any]):
        super().__init__(spec)
        import time

        from exports.guard.ml.modeling import load_guard
        from jury.backends.local import resolve_device

        started = time.monotonic()
        self.guard = load_guard(spec["model"], device=str(resolve_device(spec.get("device") or None)))
        self.codes = self.guard.manifest.codes
        self.load_seconds = time.monotonic() - started

    def score(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        for r in requests:
            if r.template.task != "safety":
                raise ValueError(f"A guard juror answers the safety task only, not {r.template.task!r}.")
        pairs = [(r.texts.get("prompt", ""), r.texts.get("response")) for r in requests]
        p_unsafe, p_cats = self.guard.predict(pairs, batch_size=self.batch_size)
        index = {code: k for k, code in enumerate(self.codes)}
        results = []
        for r, p, pc in zip(requests, p_unsafe, p_cats):
            p = min(max(float(p), _FLOOR), 1 - _FLOOR)
            logprobs = {"safe": math.log(1 - p), "unsafe": math.log(p)}
            cat_keys = [k for k in r.label_texts() if k.startswith(CAT)]
            raw = {k: (float(pc[index[k[len(CAT):]]]) if k[len(CAT):] in index else 0.0) + _FLOOR for k in cat_keys}
            total = sum(raw.values()) or 1.0
            for k, v in raw.items():
                logprobs[k] = math.log(p) + math.log(v / total)
            results.append(JudgeResult(logprobs=logprobs))
        return results

    def score_contexts(self, items):  # pragma: no cover - score() is overridden
        raise NotImplementedError("the guard backend scores texts, not rendered contexts")
