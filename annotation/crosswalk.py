"""The taxonomy crosswalk: which categories of one taxonomy version answer for which of another.

Data: :class:`annotation.models.CategoryMapping` rows (admin-editable), seeded for the shipped
presets from :mod:`annotation.crosswalk_data` by :func:`crosswalk_seed_presets` (called where the
presets are loaded). Selectors read them:

- :func:`crosswalk` ``(source_version, target_version) -> {source code: [target codes]}``: the
  identity for the same version; otherwise exactly the stored rows from source to target (a
  source code without rows maps to ``[]``). Walks are not chained: A -> B and B -> C say nothing
  about A -> C. Two versions of the *same* taxonomy with no rows between them map each code to
  the same code, when the other version has it (a sibling version, e.g. a preset re-published).
- :func:`map_codes`: a set of source codes -> the target codes they reach.
- :func:`map_scores` / :func:`map_probabilities`: per-category scores over source codes -> over
  target codes, with **P(target) = max over the source categories mapped to it**. Max, because a
  text belongs to a target category as soon as it belongs to any one of its sources: the max is the
  probability of the most likely of those (the sharpest lower bound on P(any of them) without knowing
  how they co-occur), it keeps a probability a probability (a sum could pass 1), and applied to 0/1
  decisions it is exactly "any source predicted". A target no source maps to has no score
  (``covered`` is False): a guard cannot predict it, which is not the same as predicting 0.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pure helpers (map_codes, map_scores, ...) import without Django set up
    from annotation.models import TaxonomyVersion

Mapping = dict[str, list[str]]


# --- selectors ----------------------------------------------------------------------------------


def version_for(slug: str, version: int | None = None) -> TaxonomyVersion | None:
    """A taxonomy version by slug and number (or the newest published one)."""
    from annotation.models import TaxonomyVersion

    qs = TaxonomyVersion.objects.select_related("taxonomy").filter(taxonomy__slug=slug)
    if version is not None:
        return qs.filter(version=int(version)).first()
    return qs.filter(status=TaxonomyVersion.Status.PUBLISHED).order_by("-version").first()


def _codes(version: TaxonomyVersion) -> list[str]:
    return list(version.categories.order_by("order", "code").values_list("code", flat=True))


def _label(version: TaxonomyVersion) -> str:
    return f"{version.taxonomy.slug} v{version.version}"


@dataclass(frozen=True)
class Crosswalk:
    """A crosswalk from one version to another, with what a report needs to name it."""

    source: str  # "slug vN"
    target: str
    kind: str  # identity | stored | same-code
    mapping: Mapping  # every source code -> its target codes (maybe [])
    source_codes: list[str]
    target_codes: list[str]
    rows: int = 0
    judgment_calls: int = 0
    relations: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "identity":
            return f"{self.source} (same taxonomy version: identity)"
        if self.kind == "same-code":
            return f"{self.source} → {self.target} (versions of one taxonomy: same codes)"
        unmapped = sum(1 for v in self.mapping.values() if not v)
        return (f"{self.source} → {self.target}: {self.rows} stored mappings "
                f"({self.judgment_calls} judgment calls), {unmapped} of {len(self.source_codes)} source categories unmapped")

    def as_json(self) -> dict:
        return {"source": self.source, "target": self.target, "kind": self.kind, "description": self.describe(),
                "rows": self.rows, "judgment_calls": self.judgment_calls, "relations": dict(self.relations),
                "mapping": {k: list(v) for k, v in self.mapping.items()}}


def crosswalk_between(
    source_version: TaxonomyVersion, target_version: TaxonomyVersion, *, relations: Collection[str] | None = None
) -> Crosswalk:
    """The crosswalk with its description (see the module docstring); ``relations`` keeps only
    rows of those relations (e.g. ``{"exact"}``)."""
    from annotation.models import CategoryMapping

    source_codes = _codes(source_version)
    target_codes = _codes(target_version)
    names = (_label(source_version), _label(target_version))
    if source_version.pk == target_version.pk:
        return Crosswalk(*names, "identity", {c: [c] for c in source_codes}, source_codes, target_codes)
    qs = CategoryMapping.objects.filter(source__version=source_version, target__version=target_version)
    if not qs.exists() and source_version.taxonomy_id == target_version.taxonomy_id:
        wanted = set(target_codes)
        return Crosswalk(*names, "same-code", {c: [c] if c in wanted else [] for c in source_codes},
                         source_codes, target_codes)
    if relations is not None:
        qs = qs.filter(relation__in=list(relations))
    mapping: Mapping = {c: [] for c in source_codes}
    rows = judgment_calls = 0
    counts: dict[str, int] = {}
    for src, tgt, relation, jc in qs.order_by("source__order", "target__order").values_list(
        "source__code", "target__code", "relation", "judgment_call"
    ):
        mapping[src].append(tgt)
        rows += 1
        judgment_calls += int(jc)
        counts[relation] = counts.get(relation, 0) + 1
    return Crosswalk(*names, "stored", mapping, source_codes, target_codes, rows, judgment_calls, counts)


def crosswalk(
    source_version: TaxonomyVersion, target_version: TaxonomyVersion, *, relations: Collection[str] | None = None
) -> Mapping:
    """{source code: [target codes]}; see the module docstring."""
    return crosswalk_between(source_version, target_version, relations=relations).mapping


def map_codes(codes: Iterable[str], mapping: Mapping) -> list[str]:
    """The target codes a set of source codes reaches, each once, in first-reached order.

    >>> map_codes(["S1", "S11"], {"S1": ["V"], "S11": ["V", "HR"], "S3": []})
    ['V', 'HR']
    """
    out: dict[str, None] = {}
    for code in codes:
        for target in mapping.get(code, ()):
            out[target] = None
    return list(out)


def sources_of(mapping: Mapping, target_codes: Sequence[str]) -> dict[str, list[str]]:
    """The inverse view: target code -> the source codes mapped onto it."""
    inv: dict[str, list[str]] = {t: [] for t in target_codes}
    for src, targets in mapping.items():
        for t in targets:
            if t in inv:
                inv[t].append(src)
    return inv


def map_scores(
    rows: Sequence[Sequence[float]], source_codes: Sequence[str], mapping: Mapping, target_codes: Sequence[str]
) -> tuple[list[list[float]], list[bool]]:
    """Scores [N, K_source] in ``source_codes`` order -> ([N, K_target] in ``target_codes`` order,
    covered per target). Each target gets the max of its sources' scores; an uncovered target
    gets 0.0 and ``covered`` False (callers must not read it as a prediction).

    >>> map_scores([[0.9, 0.2, 0.7]], ["S1", "S3", "S11"], {"S1": ["V"], "S11": ["V", "HR"], "S3": []}, ["V", "HR", "SH"])
    ([[0.9, 0.7, 0.0]], [True, True, False])
    """
    index = {c: k for k, c in enumerate(source_codes)}
    inv = sources_of(mapping, target_codes)
    cols = [[index[s] for s in inv[t] if s in index] for t in target_codes]
    out = [[max((float(row[k]) for k in ks), default=0.0) for ks in cols] for row in rows]
    return out, [bool(ks) for ks in cols]


def map_probabilities(probs: dict[str, float], mapping: Mapping, target_codes: Sequence[str]) -> dict[str, float]:
    """{source code: P} -> {target code: P} for the covered targets (max over sources).

    >>> map_probabilities({"S1": 0.4, "S11": 0.6}, {"S1": ["V"], "S11": ["V", "HR"]}, ["V", "HR", "SH"])
    {'V': 0.6, 'HR': 0.6}
    """
    codes = list(probs)
    scores, covered = map_scores([[probs[c] for c in codes]], codes, mapping, target_codes)
    return {t: s for t, s, ok in zip(target_codes, scores[0], covered) if ok}


# --- services -----------------------------------------------------------------------------------


def crosswalk_seed_presets(versions: Iterable[TaxonomyVersion] | None = None) -> int:
    """Store the preset crosswalk (:mod:`annotation.crosswalk_data`) between the given preset
    versions (default: the newest published version of each preset). Idempotent and
    edit-preserving: a (source version, target version) pair that already has any row is left
    alone, so an admin's changed, added or deleted rows stay as they are. Returns the rows created."""
    from django.db import transaction

    with transaction.atomic():
        return _seed(versions)


def _seed(versions: Iterable[TaxonomyVersion] | None) -> int:
    from annotation.crosswalk_data import directed_rows
    from annotation.models import CategoryMapping, HazardCategory

    if versions is None:
        from annotation.presets import TAXONOMY_PRESETS

        found = [version_for(spec.slug) for spec in TAXONOMY_PRESETS]
        versions = [v for v in found if v is not None]
    by_slug = {v.taxonomy.slug: v for v in versions}
    cats: dict[tuple[str, str], HazardCategory] = {
        (slug, c.code): c for slug, v in by_slug.items() for c in v.categories.all()
    }
    pending: dict[tuple[str, str], list[CategoryMapping]] = {}
    for src_slug, src_code, tgt_slug, tgt_code, relation, jc, note in directed_rows():
        if src_slug not in by_slug or tgt_slug not in by_slug:
            continue
        try:
            source, target = cats[(src_slug, src_code)], cats[(tgt_slug, tgt_code)]
        except KeyError as exc:
            raise ValueError(f"crosswalk data names category {exc.args[0]} that the preset version lacks") from None
        pending.setdefault((src_slug, tgt_slug), []).append(
            CategoryMapping(source=source, target=target, relation=relation, judgment_call=jc, note=note)
        )
    created = 0
    for (src_slug, tgt_slug), rows in pending.items():
        if CategoryMapping.objects.filter(source__version=by_slug[src_slug], target__version=by_slug[tgt_slug]).exists():
            continue
        CategoryMapping.objects.bulk_create(rows)
        created += len(rows)
    return created
