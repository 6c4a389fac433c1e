"""The ``guard`` model backend: a trained guard folder sitting on the jury as one more juror.

Registered in jury's backend registry (``exports.guard.apps``) by dotted path, so registering
imports no torch; a worker imports this module when it first builds a guard juror. The spec's
``model`` is the guard folder (its ``guard.json`` is checked when the spec is validated, without
torch).

It answers the **safety** task only, with one classifier pass per request instead of label
log-probabilities: ``safe`` / ``unsafe`` get log(1 - p) / log(p) with p the guard's calibrated
P(unsafe), and each ``cat:<code>`` continuation gets log(p) + log(q_code), q being the guard's
per-category probabilities normalised over the project's categories. ``jury.judging`` then
recovers exactly P(unsafe) = p and P(code) = p * q_code, as for any juror.

The project's categories are read under the PROJECT's taxonomy version: when the guard was
trained under another one, its category probabilities go through the stored crosswalk
(``annotation.crosswalk``: P(project category) = max over the guard categories mapped to it), so a
Llama Guard 3 project asking a guard trained on Aegis 2.0 for "S2 Non-Violent Crimes" gets the
guard's "Criminal Planning/Confessions", not its "S2 Sexual". A project category no guard category
maps to gets a negligible probability. The project's version is the spec's ``taxonomy``
(``slug:version``) when given, else the version whose judged (code, name) list is exactly the
request's category block (the guard's own version first, then the newest published); if none
matches, codes are taken as the guard's own (the behaviour before the crosswalk).
"""
from __future__ import annotations

import math
from typing import Any

from exports.guard.manifest import GuardManifestError, read_manifest
from jury.backends.base import Backend, JudgeRequest, JudgeResult
from jury.judging import CAT, judged_categories

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
        self._walks: dict[str, dict[str, list[str]] | None] = {}  # category block -> guard code -> project codes

    def _guard_version(self):
        from annotation.crosswalk import version_for

        m = self.guard.manifest
        return version_for(m.taxonomy_slug, m.taxonomy_version)

    def _project_version(self, pairs: list[tuple[str, str]]):
        """The taxonomy version the request's categories come from (see the module docstring)."""
        from annotation.crosswalk import version_for
        from annotation.models import HazardCategory, TaxonomyVersion

        named = self.spec.get("taxonomy")
        if named:
            slug, _, number = str(named).partition(":")
            return version_for(slug, int(number) if number.isdigit() else None)
        wanted = sorted(pairs)
        codes = [c for c, _ in pairs]
        candidates = set(HazardCategory.objects.filter(code__in=codes).values_list("version_id", flat=True))
        guard_version = self._guard_version()
        ordered = sorted(
            TaxonomyVersion.objects.filter(pk__in=candidates).select_related("taxonomy"),
            key=lambda v: (guard_version is None or v.pk != guard_version.pk, not v.is_published, -v.version, v.pk),
        )
        for version in ordered:
            rows = list(version.categories.values_list("code", "name"))
            if sorted(judged_categories(rows)) == wanted:
                return version
        return None

    def _walk(self, block: str) -> dict[str, list[str]] | None:
        """guard code -> project codes for the request's category block; None: codes as they are."""
        if block not in self._walks:
            from annotation.crosswalk import crosswalk_between

            pairs = [(code.strip(), name.strip()) for code, sep, name in
                     (line.partition(":") for line in block.splitlines()) if sep]
            project_version = self._project_version(pairs) if pairs or self.spec.get("taxonomy") else None
            guard_version = self._guard_version()
            walk = None
            if project_version is not None and guard_version is not None and project_version.pk != guard_version.pk:
                walk = crosswalk_between(guard_version, project_version).mapping
            self._walks[block] = walk
        return self._walks[block]

    def _category_probs(self, r: JudgeRequest, pc, cat_keys: list[str]) -> dict[str, float]:
        """The guard's P(category) for each project code asked for (0 when none is known)."""
        wanted = [k[len(CAT):] for k in cat_keys]
        walk = self._walk(r.fields.get("categories", ""))
        if walk is None:
            index = {code: k for k, code in enumerate(self.codes)}
            return {c: float(pc[index[c]]) if c in index else 0.0 for c in wanted}
        from annotation.crosswalk import map_probabilities

        mapped = map_probabilities({c: float(v) for c, v in zip(self.codes, pc)}, walk, wanted)
        return {c: mapped.get(c, 0.0) for c in wanted}

    def score(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        for r in requests:
            if r.template.task != "safety":
                raise ValueError(f"A guard juror answers the safety task only, not {r.template.task!r}.")
        pairs = [(r.texts.get("prompt", ""), r.texts.get("response")) for r in requests]
        p_unsafe, p_cats = self.guard.predict(pairs, batch_size=self.batch_size)
        results = []
        for r, p, pc in zip(requests, p_unsafe, p_cats):
            p = min(max(float(p), _FLOOR), 1 - _FLOOR)
            logprobs = {"safe": math.log(1 - p), "unsafe": math.log(p)}
            cat_keys = [k for k in r.label_texts() if k.startswith(CAT)]
            probs = self._category_probs(r, pc, cat_keys)
            raw = {k: probs[k[len(CAT):]] + _FLOOR for k in cat_keys}
            total = sum(raw.values()) or 1.0
            for k, v in raw.items():
                logprobs[k] = math.log(p) + math.log(v / total)
            results.append(JudgeResult(logprobs=logprobs))
        return results

    def score_contexts(self, items):  # pragma: no cover - score() is overridden
        raise NotImplementedError("the guard backend scores texts, not rendered contexts")
