"""Inter-rater agreement, with bootstrap 95% intervals that resample items.

Input: a long table
-------------------
Every function takes the same simple shape, which a selector fills from current ``Annotation`` rows
(and from the jury's and the guards' recorded judgments, which are just other raters)::

    rows = [(rater, item, value), ...]

- ``rater``: any hashable id: ``"u:17"`` for a person, ``"juror:smollm2"``, ``"guard:3"``,
  ``"jury"``, ``"consensus"``... Humans and machines are treated alike.
- ``item``: any hashable id of the thing judged: an item id for a prompt label, ``(item_id,
  response_id)`` for a response's label, ``(item_id, response_a, response_b)`` for a pairwise
  choice (orient the choice so ``"a"`` always means the same response of the pair).
- ``value``: depends on the metric:

  - labels (:class:`LabelTable`, :func:`label_agreement`, :func:`agreement_matrix`,
    :func:`annotator_agreement`): one category, e.g. ``"safe" / "needs_caution" / "unsafe"`` or
    ``"a" / "b" / "tie"``;
  - categories (:func:`category_agreement`): the collection of category codes the rater marked
    (empty when none, e.g. for a "safe" label): a rater who judged the item *saw* every category
    and said present or absent for each;
  - rankings (:class:`RankingTable`, :func:`ranking_agreement`): ``Annotation.ranking`` as stored,
    tie groups of response ids, best first, ``[[12], [14, 15], [13]]`` (a flat ``[12, 14, 13]`` is
    read as groups of one).

One value per (rater, item): when a pair repeats, the last row wins (selectors pass the current
annotations, so this does not happen in practice).

Estimates
---------
Each figure is an :class:`Estimate`: the value on all items, a percentile 95% interval from
``n_boot`` bootstrap resamples of the *items* (a seeded ``numpy.random.Generator``; the same seed
and item count give the same resamples, so figures of one call are resampled together), and the
number of items that entered (items with at least two raters). Every statistic here is a function of
per-item sums, so a resample is a vector of item multiplicities and the whole bootstrap is a few
matrix products (``bench/metrics.py`` has the figures).

- Krippendorff's alpha: the point value from the ``krippendorff`` package; the resamples from the
  same coincidence-matrix formula (the tests check the two agree on the full data).
- Fleiss' kappa: Fleiss (1971) when every item has the same number of raters; with varying numbers
  it is the usual generalisation (per-item agreement P_i over that item's m_i raters, category
  shares over all ratings of items with at least two raters).
- Percent agreement: the mean over items of P_i, the share of agreeing rater pairs on the item.
- Cohen's kappa per pair of raters on their shared items: the same formula as scikit-learn's
  ``cohen_kappa_score`` (the tests compare every pair with it), computed for all pairs at once from
  confusion counts because one call per pair is too slow for 50 raters.
- Kendall's tau-b per pair of raters: per shared item (on the responses both ranked), then
  averaged over the shared items (the tests compare with ``scipy.stats.kendalltau``).
- Kendall's W with the tie correction, per item over the raters who ranked it, averaged over items.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import krippendorff
import numpy as np
from scipy.stats import rankdata

Rating = tuple[Hashable, Hashable, Any]
SAFETY_LABELS: tuple[str, ...] = ("safe", "needs_caution", "unsafe")
PAIR_CHOICES: tuple[str, ...] = ("a", "b", "tie")
EDIT_VERDICTS: tuple[str, ...] = ("accept", "reject", "fix")  # an edit review's verdict (issue 11)
DEFAULT_BOOT = 1000
# Resample weights are drawn in chunks of at most this many (resample, item) cells.
_CHUNK_CELLS = 4_000_000
# The bootstrap of alpha keeps a V x V coincidence block per item; above this many distinct values
# (long rankings) only the point value is computed.
_MAX_BOOT_VALUES = 64


# --- Estimates and the item bootstrap ------------------------------------------------------------


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class Estimate:
    """A figure on all items, its bootstrap 95% interval (percentiles 2.5 and 97.5 of the item
    resamples; NaN when not computed or undefined) and the number of items it rests on."""

    value: float
    low: float
    high: float
    n_items: int

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: NaN becomes ``None``."""
        return {"value": _num(self.value), "low": _num(self.low), "high": _num(self.high), "n_items": self.n_items}


def _draw_weights(n_items: int, n_boot: int, seed: int | None) -> list[np.ndarray]:
    """The chunks of :func:`resample_weights` as small integers (a multiplicity above 255 has
    probability far below 1e-100 at any item count; uint16 keeps it exact anyway)."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n_items)
    out = []
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n_items, size=(b, n_items))
        idx += (np.arange(b) * n_items)[:, None]
        out.append(np.bincount(idx.ravel(), minlength=b * n_items).reshape(b, n_items).astype(np.uint16))
        done += b
    return out


# Resample weights shared by every figure of one report (see :func:`shared_resamples`): None
# outside it, so nothing is kept between reports.
_SHARED: dict[tuple[int, int, int | None], list[np.ndarray]] | None = None
# Above this many (resample, item) cells the weights are drawn again rather than kept.
_SHARED_MAX_CELLS = 200_000_000


@contextmanager
def shared_resamples() -> Iterator[None]:
    """Within this block, the resample weights of a (item count, n_boot, seed) are drawn once and
    reused by every bootstrap that asks for the same ones (the draws are identical anyway: the
    same seed and item count give the same resamples), so a report whose figures rest on the same
    items pays for one draw instead of one per figure family."""
    global _SHARED
    outer = _SHARED
    if outer is None:
        _SHARED = {}
    try:
        yield
    finally:
        if outer is None:
            _SHARED = None


def resample_weights(n_items: int, n_boot: int, seed: int | None) -> Iterator[np.ndarray]:
    """Item multiplicities of ``n_boot`` bootstrap resamples (each draws ``n_items`` items with
    replacement), yielded in chunks of shape (b, n_items). Deterministic for a given seed."""
    if n_items <= 0 or n_boot <= 0:
        return
    key = (n_items, n_boot, seed)
    if _SHARED is not None and seed is not None and key in _SHARED:
        chunks = _SHARED[key]
    else:
        chunks = _draw_weights(n_items, n_boot, seed)
        if _SHARED is not None and seed is not None and n_items * n_boot <= _SHARED_MAX_CELLS:
            _SHARED[key] = chunks
    for chunk in chunks:
        yield chunk.astype(np.float64)


Statistic = Callable[[np.ndarray], np.ndarray]


class _Plan:
    """Statistics that are functions of per-item sums, bootstrapped together: ``columns`` registers
    per-item columns (n_items x k) and returns their indices; ``add`` a statistic reading some of
    them, as a function from summed columns (b x k) to values (b,). Columns are shared between
    statistics, so each is summed once per resample."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.blocks: list[np.ndarray] = []
        self.stats: list[tuple[str, np.ndarray, Statistic, int, float | None]] = []
        self._width = 0

    def columns(self, columns: np.ndarray) -> np.ndarray:
        columns = np.asarray(columns, dtype=np.float64)
        if columns.ndim == 1:
            columns = columns[:, None]
        self.blocks.append(columns)
        idx = np.arange(self._width, self._width + columns.shape[1])
        self._width += columns.shape[1]
        return idx

    def add(self, name: str, idx: np.ndarray, fn: Statistic, n_used: int, point: float | None = None) -> None:
        self.stats.append((name, np.asarray(idx), fn, n_used, point))

    def run(self, n_boot: int, seed: int | None) -> dict[str, Estimate]:
        if not self.stats:
            return {}
        table = np.hstack(self.blocks) if self.n_items else np.zeros((0, self._width))
        total = table.sum(axis=0)[None, :]
        samples: dict[str, list[np.ndarray]] = {name: [] for name, *_ in self.stats}
        if n_boot > 0:
            for weights in resample_weights(self.n_items, n_boot, seed):
                summed = weights @ table
                for name, cols, fn, _, _ in self.stats:
                    samples[name].append(fn(summed[:, cols]))
        out = {}
        for name, cols, fn, n_used, point in self.stats:
            value = float(fn(total[:, cols])[0]) if point is None else point
            low, high = _interval(np.concatenate(samples[name]) if samples[name] else np.array([]))
            out[name] = Estimate(value, low, high, n_used)
        return out


def _interval(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.true_divide(a, b)
    return np.where(np.isfinite(out), out, np.nan)


# --- Label tables --------------------------------------------------------------------------------


def _index(values: Iterable[Hashable], first: Sequence[Hashable] = ()) -> dict[Hashable, int]:
    index: dict[Hashable, int] = {}
    for v in first:
        index.setdefault(v, len(index))
    for v in values:
        index.setdefault(v, len(index))
    return index


def _sort_key(value: Hashable) -> tuple[str, str]:
    return (type(value).__name__, str(value))


@dataclass(frozen=True)
class LabelTable:
    """Nominal (or ordered) labels as entries sorted by item: ``rater[e]`` gave ``item[e]`` the
    category ``categories[code[e]]``. Build with :meth:`from_rows`."""

    raters: list[Hashable]
    items: list[Hashable]
    categories: list[Hashable]
    rater: np.ndarray
    item: np.ndarray
    code: np.ndarray

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Rating],
        categories: Sequence[Hashable] | None = None,
        raters: Sequence[Hashable] = (),
    ) -> LabelTable:
        """``categories`` fixes the category order (needed for ordinal alpha; a value outside it
        is an error); without it the categories seen, sorted. ``raters`` puts these raters first, in
        this order, even those with no rating (rows of an agreement matrix)."""
        latest: dict[tuple[Hashable, Hashable], Hashable] = {}
        for rater, item, value in rows:
            latest[(rater, item)] = value
        if categories is None:
            categories = sorted(set(latest.values()), key=_sort_key)
        cat_index = {c: i for i, c in enumerate(categories)}
        unknown = {v for v in latest.values() if v not in cat_index}
        if unknown:
            raise ValueError(f"values outside the categories {list(categories)!r}: {sorted(map(str, unknown))!r}")
        rater_index = _index((r for r, _ in latest), raters)
        item_index = _index(i for _, i in latest)
        n = len(latest)
        rater_arr = np.fromiter((rater_index[r] for r, _ in latest), dtype=np.int64, count=n)
        item_arr = np.fromiter((item_index[i] for _, i in latest), dtype=np.int64, count=n)
        code_arr = np.fromiter((cat_index[v] for v in latest.values()), dtype=np.int64, count=n)
        order = np.lexsort((rater_arr, item_arr))
        return cls(list(rater_index), list(item_index), list(categories), rater_arr[order], item_arr[order], code_arr[order])

    @property
    def n_entries(self) -> int:
        return int(self.code.size)

    def value_counts(self) -> np.ndarray:
        """(items x categories): how many raters gave each item each category."""
        n, v = len(self.items), len(self.categories)
        return np.bincount(self.item * v + self.code, minlength=n * v).reshape(n, v)


# --- Formulas on per-item counts -----------------------------------------------------------------


def _coincidence_columns(counts: np.ndarray) -> np.ndarray:
    """Each item's contribution to Krippendorff's coincidence matrix, flattened: (items x V*V)."""
    counts = np.asarray(counts, dtype=np.float64)
    n, v = counts.shape
    m = counts.sum(axis=1)
    pairs = counts[:, :, None] * counts[:, None, :]
    pairs[:, np.arange(v), np.arange(v)] -= counts
    scale = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    return (pairs * scale[:, None, None]).reshape(n, v * v)


def _alpha_from_coincidences(flat: np.ndarray, ordinal: bool) -> np.ndarray:
    """Krippendorff's alpha (nominal or ordinal) for each row of summed coincidences (b x V*V),
    the same formula as the ``krippendorff`` package."""
    b = flat.shape[0]
    v = int(round(math.sqrt(flat.shape[1])))
    o = flat.reshape(b, v, v)
    n_v = o.sum(axis=2)
    n = n_v.sum(axis=1)
    if ordinal:
        idx = np.arange(v)
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
        cum = np.cumsum(n_v, axis=1)
        between = cum[:, hi] - cum[:, lo] + n_v[:, lo]
        delta = (between - (n_v[:, lo] + n_v[:, hi]) / 2.0) ** 2
    else:
        delta = np.broadcast_to(1.0 - np.eye(v), (b, v, v))
    observed = (o * delta).sum(axis=(1, 2))
    expected = (n_v[:, :, None] * n_v[:, None, :] * delta).sum(axis=(1, 2)) / np.where(n > 1, n - 1, np.nan)
    return 1.0 - _divide(observed, expected)


def _pairwise_columns(counts: np.ndarray) -> np.ndarray:
    """Per-item sums for Fleiss' kappa and percent agreement: columns [valid, P_i, unanimous,
    counts (V), m], all zero for items with fewer than two raters."""
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    valid = (m >= 2).astype(np.float64)
    p_i = _divide((counts**2).sum(axis=1) - m, m * (m - 1))
    p_i = np.where(valid > 0, p_i, 0.0)
    unanimous = (counts.max(axis=1, initial=0) == m) * valid
    return np.column_stack([valid, p_i, unanimous, counts * valid[:, None], m * valid])


def _fleiss_from_sums(s: np.ndarray) -> np.ndarray:
    v = s.shape[1] - 4
    p_bar = _divide(s[:, 1], s[:, 0])
    shares = _divide(s[:, 3 : 3 + v], s[:, 3 + v : 4 + v])
    p_e = (shares**2).sum(axis=1)
    return _divide(p_bar - p_e, 1.0 - p_e)


def _percent_from_sums(s: np.ndarray) -> np.ndarray:
    return _divide(s[:, 1], s[:, 0])


def _unanimous_from_sums(s: np.ndarray) -> np.ndarray:
    return _divide(s[:, 2], s[:, 0])


def fleiss_kappa_counts(counts: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Fleiss' kappa from an (items x categories) table of how many raters chose each category."""
    s = _pairwise_columns(np.asarray(counts)).sum(axis=0)[None, :]
    return float(_fleiss_from_sums(s)[0])


def fleiss_kappa(table: LabelTable) -> float:
    return fleiss_kappa_counts(table.value_counts())


def percent_agreement(table: LabelTable) -> float:
    """Mean over items (with two raters or more) of the share of rater pairs that agree."""
    s = _pairwise_columns(table.value_counts()).sum(axis=0)[None, :]
    return float(_percent_from_sums(s)[0])


def _package_alpha(counts: np.ndarray, level: Literal["nominal", "ordinal"]) -> float:
    counts = np.asarray(counts, dtype=np.float64)
    pairable = counts[counts.sum(axis=1) >= 2]
    if pairable.shape[0] == 0 or np.count_nonzero(pairable.sum(axis=0)) < 2:
        return math.nan  # no pairable values, or a single value: alpha is undefined
    return float(krippendorff.alpha(value_counts=pairable, level_of_measurement=level))


def krippendorff_alpha(table: LabelTable, level: Literal["nominal", "ordinal"] = "nominal") -> float:
    """Krippendorff's alpha by the ``krippendorff`` package. ``"ordinal"`` uses the order of
    ``table.categories``."""
    return _package_alpha(table.value_counts(), level)


def _alpha_statistic(ordinal: bool) -> Statistic:
    def statistic(summed: np.ndarray) -> np.ndarray:
        return _alpha_from_coincidences(summed, ordinal)

    return statistic


def _add_count_family(plan: _Plan, prefix: str, counts: np.ndarray, ordinal: bool) -> None:
    n_used = int((counts.sum(axis=1) >= 2).sum())
    pair = plan.columns(_pairwise_columns(counts))
    plan.add(f"{prefix}fleiss_kappa", pair, _fleiss_from_sums, n_used)
    plan.add(f"{prefix}percent_agreement", pair[:2], _percent_from_sums, n_used)
    plan.add(f"{prefix}unanimous", pair[:3], _unanimous_from_sums, n_used)
    levels: list[Literal["nominal", "ordinal"]] = ["nominal", "ordinal"] if ordinal else ["nominal"]
    coincidences = plan.columns(_coincidence_columns(counts)) if counts.shape[1] <= _MAX_BOOT_VALUES else None
    for level in levels:
        point = _package_alpha(counts, level)
        if coincidences is not None:
            plan.add(f"{prefix}alpha_{level}", coincidences, _alpha_statistic(level == "ordinal"), n_used, point)
        else:
            plan.add(f"{prefix}alpha_{level}", pair[:1], lambda s: np.full(s.shape[0], np.nan), n_used, point)


def label_agreement(
    table: LabelTable, *, ordinal: bool = False, n_boot: int = DEFAULT_BOOT, seed: int | None = 0
) -> dict[str, Estimate]:
    """Agreement on one label per (rater, item): ``alpha_nominal``, ``fleiss_kappa``,
    ``percent_agreement`` (mean share of agreeing pairs per item), ``unanimous`` (share of items on
    which every rater agrees), and ``alpha_ordinal`` when ``ordinal`` (the category order of the
    table, e.g. safe < needs caution < unsafe)."""
    plan = _Plan(len(table.items))
    _add_count_family(plan, "", table.value_counts(), ordinal)
    return plan.run(n_boot, seed)


def choice_agreement(
    rows: Iterable[Rating], *, n_boot: int = DEFAULT_BOOT, seed: int | None = 0
) -> dict[str, Estimate]:
    """Pairwise choices (``"a"`` / ``"b"`` / ``"tie"`` per (rater, pair)): percent agreement and
    alpha (nominal), with the rest of :func:`label_agreement`."""
    rows = list(rows)
    seen = {v for _, _, v in rows}
    categories = list(PAIR_CHOICES) if seen <= set(PAIR_CHOICES) else None
    return label_agreement(LabelTable.from_rows(rows, categories), n_boot=n_boot, seed=seed)


def verdict_agreement(
    rows: Iterable[Rating], *, n_boot: int = DEFAULT_BOOT, seed: int | None = 0
) -> dict[str, Estimate]:
    """Edit review verdicts (``"accept"`` / ``"reject"`` / ``"fix"`` per (rater, review item)):
    percent agreement and alpha (nominal: a fix is neither an accept nor a reject), with the rest of
    :func:`label_agreement`."""
    return label_agreement(LabelTable.from_rows(rows, EDIT_VERDICTS), n_boot=n_boot, seed=seed)


def _binary_fleiss(s: np.ndarray) -> np.ndarray:
    """Fleiss' kappa from the summed binary columns [valid, m, n1, P_i, unanimous, o_PA]."""
    p1 = _divide(s[:, 2], s[:, 1])
    p_e = p1**2 + (1 - p1) ** 2
    return _divide(_divide(s[:, 3], s[:, 0]) - p_e, 1 - p_e)


def _binary_alpha(s: np.ndarray) -> np.ndarray:
    """Krippendorff's alpha (nominal, two values) from the same sums: n = sum m, n_P = sum n1,
    alpha = 1 - (n - 1) o_PA / (n_A n_P)."""
    n, n_p = s[:, 1], s[:, 2]
    return 1 - _divide((n - 1) * s[:, 5], (n - n_p) * n_p)


def category_agreement(
    rows: Iterable[Rating],
    categories: Sequence[Hashable] | None = None,
    *,
    n_boot: int = DEFAULT_BOOT,
    seed: int | None = 0,
) -> dict[Hashable, dict[str, Estimate]]:
    """Per category, present or absent among the raters who judged the item: ``value`` of each row
    is the collection of codes the rater marked. For each category: ``alpha_nominal``,
    ``fleiss_kappa``, ``percent_agreement``, ``unanimous`` and ``present_share`` (the share of
    ratings that mark it). ``categories`` fixes the order; codes seen outside it are added after."""
    latest: dict[tuple[Hashable, Hashable], frozenset[Hashable]] = {}
    for rater, item, codes in rows:
        latest[(rater, item)] = frozenset(codes or ())
    seen = set().union(*latest.values()) if latest else set()
    order = list(categories or [])
    order += sorted(seen - set(order), key=_sort_key)
    item_index = _index(i for _, i in latest)
    n = len(item_index)
    width = len(order)
    cat_index = {c: k for k, c in enumerate(order)}
    rows_item = np.fromiter((item_index[i] for _, i in latest), dtype=np.int64, count=len(latest))
    m = np.bincount(rows_item, minlength=n).astype(np.float64)
    marks = np.fromiter(
        (item_index[item] * width + cat_index[code] for (_, item), codes in latest.items() if codes for code in codes),
        dtype=np.int64,
    )
    present = np.bincount(marks, minlength=n * width).reshape(n, width).astype(np.float64)
    # Present / absent is binary, so each category needs four per-item sums beside two shared ones
    # (items with two raters or more, and their ratings): with n1 marks of m ratings, P_i =
    # (n1^2 + (m - n1)^2 - m) / (m (m - 1)), and the coincidence o_PA = n1 (m - n1) / (m - 1).
    plan = _Plan(n)
    valid = (m >= 2).astype(np.float64)
    shared = plan.columns(np.column_stack([valid, m * valid]))
    n_used = int(valid.sum())
    safe_m = np.maximum(m, 2)
    for k in range(len(order)):
        n1 = present[:, k]
        n0 = m - n1
        p_i = (n1**2 + n0**2 - m) / (safe_m * (safe_m - 1))
        unanimous = (n1 == 0) | (n0 == 0)
        o_pa = n1 * n0 / (safe_m - 1)
        own = plan.columns(np.column_stack([n1, p_i, unanimous, o_pa]) * valid[:, None])
        idx = np.concatenate([shared, own])
        prefix = f"{k}:"
        plan.add(prefix + "fleiss_kappa", idx, _binary_fleiss, n_used)
        plan.add(prefix + "percent_agreement", idx, lambda s: _divide(s[:, 3], s[:, 0]), n_used)
        plan.add(prefix + "unanimous", idx, lambda s: _divide(s[:, 4], s[:, 0]), n_used)
        # The point value from the same sums (the package's formula for two values: the tests
        # compare it with krippendorff.alpha); one package call per category cost more than the rest.
        plan.add(prefix + "alpha_nominal", idx, _binary_alpha, n_used)
        plan.add(prefix + "present_share", idx, lambda s: _divide(s[:, 2], s[:, 1]), n_used)
    flat = plan.run(n_boot, seed)
    out: dict[Hashable, dict[str, Estimate]] = {}
    for k, code in enumerate(order):
        prefix = f"{k}:"
        out[code] = {name[len(prefix):]: est for name, est in flat.items() if name.startswith(prefix)}
    return out


# --- Pairs of raters -----------------------------------------------------------------------------


def _entry_pairs(item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (e, f), e < f, of entries on the same item (``item`` sorted)."""
    if item.size < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    largest = int(np.bincount(item).max())
    firsts, seconds = [], []
    for k in range(1, largest):
        e = np.nonzero(item[:-k] == item[k:])[0]
        firsts.append(e)
        seconds.append(e + k)
    if not firsts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


@dataclass(frozen=True)
class PairMatrix:
    """A rater x rater matrix: ``values[name][a, b]`` over the ``n_shared[a, b]`` items both
    judged (the diagonal: a rater with itself). NaN where undefined or nothing is shared."""

    raters: list[Hashable]
    values: dict[str, np.ndarray]
    n_shared: np.ndarray

    def rows(self) -> list[dict[str, Any]]:
        """One dict per ordered pair of different raters, for CSV or JSON."""
        out = []
        for a, ra in enumerate(self.raters):
            for b, rb in enumerate(self.raters):
                if a != b:
                    row: dict[str, Any] = {"rater_a": ra, "rater_b": rb, "n_shared": int(self.n_shared[a, b])}
                    row.update({name: _num(float(v[a, b])) for name, v in self.values.items()})
                    out.append(row)
        return out


def agreement_matrix(table: LabelTable) -> PairMatrix:
    """Cohen's kappa and percent agreement for every pair of the table's raters (humans, jurors,
    guards, the jury, a consensus: any rater ids) on the items both labelled. ``values`` has
    ``"kappa"`` and ``"percent_agreement"``."""
    r, v = len(table.raters), len(table.categories)
    e, f = _entry_pairs(table.item)
    ra, rb, va, vb = table.rater[e], table.rater[f], table.code[e], table.code[f]
    own = np.arange(table.n_entries)
    # Each shared item counts for (a, b) and (b, a); each rating once on the diagonal.
    a_all = np.concatenate([ra, rb, table.rater[own]])
    b_all = np.concatenate([rb, ra, table.rater[own]])
    x_all = np.concatenate([va, vb, table.code[own]])
    y_all = np.concatenate([vb, va, table.code[own]])
    flat = ((a_all * r + b_all) * v + x_all) * v + y_all
    conf = np.bincount(flat, minlength=r * r * v * v).reshape(r, r, v, v).astype(np.float64)
    n = conf.sum(axis=(2, 3))
    agree = np.trace(conf, axis1=2, axis2=3)
    p_o = _divide(agree, n)
    rows_ = _divide(conf.sum(axis=3), n[:, :, None])
    cols_ = _divide(conf.sum(axis=2), n[:, :, None])
    p_e = (rows_ * cols_).sum(axis=2)
    kappa = _divide(p_o - p_e, 1.0 - p_e)
    kappa = np.where(n > 0, kappa, np.nan)
    return PairMatrix(list(table.raters), {"kappa": kappa, "percent_agreement": p_o}, n.astype(np.int64))


def majority(table: LabelTable, exclude: Iterable[Hashable] = ()) -> dict[Hashable, Hashable]:
    """Each item's most frequent category among the raters not in ``exclude``; items with a tie for
    the most frequent category, or with no rater left, are left out."""
    if table.n_entries == 0:
        return {}
    excluded = {k for k, r in enumerate(table.raters) if r in set(exclude)}
    keep = ~np.isin(table.rater, list(excluded)) if excluded else np.ones(table.n_entries, dtype=bool)
    n, v = len(table.items), len(table.categories)
    counts = np.bincount(table.item[keep] * v + table.code[keep], minlength=n * v).reshape(n, v)
    top = counts.max(axis=1, initial=0)
    unique = (counts == top[:, None]).sum(axis=1) == 1
    winner = counts.argmax(axis=1)
    return {table.items[i]: table.categories[winner[i]] for i in np.nonzero(unique & (top > 0))[0]}


def consensus_rows(
    table: LabelTable, rater: Hashable = "consensus", exclude: Iterable[Hashable] = ()
) -> list[Rating]:
    """The majority label of each item as rows of one more rater, to add to a matrix. Exclude the
    machine raters to compare them with the human consensus."""
    return [(rater, item, value) for item, value in majority(table, exclude).items()]


@dataclass(frozen=True)
class AnnotatorAgreement:
    """One rater against the others: ``loo_agreement`` is the share of their items on which their
    label equals the majority of the *other* raters of the item (``loo_items``: the items with
    such a majority, i.e. another rater and no tie); ``distribution`` their share of each category
    and ``distance`` its total variation distance from the project's (all ratings), 0 to 1."""

    rater: Hashable
    n_items: int
    loo_agreement: float
    loo_items: int
    distribution: dict[Hashable, float]
    distance: float
    gold_accuracy: float = math.nan
    gold_items: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rater": self.rater,
            "n_items": self.n_items,
            "loo_agreement": _num(self.loo_agreement),
            "loo_items": self.loo_items,
            "distribution": {str(k): v for k, v in self.distribution.items()},
            "distance": _num(self.distance),
            "gold_accuracy": _num(self.gold_accuracy),
            "gold_items": self.gold_items,
        }


def project_distribution(table: LabelTable) -> dict[Hashable, float]:
    counts = np.bincount(table.code, minlength=len(table.categories))
    total = max(int(counts.sum()), 1)
    return {c: float(counts[k] / total) for k, c in enumerate(table.categories)}


def annotator_agreement(
    table: LabelTable, gold: Mapping[Hashable, Hashable] | None = None
) -> list[AnnotatorAgreement]:
    """Per rater, in the table's rater order: agreement with the leave-one-out consensus, label
    distribution against the project's, and accuracy on ``gold`` items (item -> correct label)."""
    r, v, n = len(table.raters), len(table.categories), len(table.items)
    if table.n_entries == 0:
        return [
            AnnotatorAgreement(rater, 0, math.nan, 0, dict.fromkeys(table.categories, math.nan), math.nan)
            for rater in table.raters
        ]
    counts = np.bincount(table.item * v + table.code, minlength=n * v).reshape(n, v)
    others = counts[table.item].copy()
    others[np.arange(table.n_entries), table.code] -= 1
    top = others.max(axis=1, initial=0)
    has_majority = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)
    agrees = has_majority & (others.argmax(axis=1) == table.code)
    loo_items = np.bincount(table.rater, weights=has_majority, minlength=r)
    loo_agree = np.bincount(table.rater, weights=agrees, minlength=r)
    per_rater = np.bincount(table.rater * v + table.code, minlength=r * v).reshape(r, v).astype(np.float64)
    n_items = per_rater.sum(axis=1)
    project = np.bincount(table.code, minlength=v) / max(table.n_entries, 1)
    shares = _divide(per_rater, n_items[:, None])
    distance = 0.5 * np.abs(shares - project[None, :]).sum(axis=1)
    gold_right: np.ndarray = np.zeros(r)
    gold_seen: np.ndarray = np.zeros(r)
    if gold:
        cat_index = {c: k for k, c in enumerate(table.categories)}
        truth = np.full(n, -1)
        for i, item in enumerate(table.items):
            if item in gold and gold[item] in cat_index:
                truth[i] = cat_index[gold[item]]
        on_gold = truth[table.item] >= 0
        gold_seen = np.bincount(table.rater, weights=on_gold, minlength=r)
        gold_right = np.bincount(table.rater, weights=on_gold & (truth[table.item] == table.code), minlength=r)
    out = []
    for k, rater in enumerate(table.raters):
        out.append(
            AnnotatorAgreement(
                rater=rater,
                n_items=int(n_items[k]),
                loo_agreement=float(_divide(loo_agree[k : k + 1], loo_items[k : k + 1])[0]),
                loo_items=int(loo_items[k]),
                distribution={c: float(shares[k, j]) if n_items[k] else math.nan for j, c in enumerate(table.categories)},
                distance=float(distance[k]) if n_items[k] else math.nan,
                gold_accuracy=float(_divide(gold_right[k : k + 1], gold_seen[k : k + 1])[0]),
                gold_items=int(gold_seen[k]),
            )
        )
    return out


# --- Rankings ------------------------------------------------------------------------------------


def _ranking_ranks(ranking: Any) -> tuple[dict[Hashable, float], float]:
    """Mid-ranks (1 = best, tied responses share the mean of their positions) and the tie term
    sum(t^3 - t) over tie groups."""
    ranks: dict[Hashable, float] = {}
    ties = 0.0
    position = 1
    for group in ranking:
        members = list(group) if isinstance(group, (list, tuple, set, frozenset)) else [group]
        t = len(members)
        for response in members:
            ranks[response] = position + (t - 1) / 2.0
        ties += t**3 - t
        position += t
    return ranks, ties


@dataclass(frozen=True)
class RankingTable:
    """Rankings as entries sorted by item: ``ranks[e, k]`` is the mid-rank that ``rater[e]`` gave
    the k-th response of ``item[e]`` (``responses[item][k]``), NaN where not ranked."""

    raters: list[Hashable]
    items: list[Hashable]
    responses: list[list[Hashable]]
    rater: np.ndarray
    item: np.ndarray
    ranks: np.ndarray
    ties: np.ndarray

    @classmethod
    def from_rows(cls, rows: Iterable[Rating], raters: Sequence[Hashable] = ()) -> RankingTable:
        latest: dict[tuple[Hashable, Hashable], Any] = {}
        for rater, item, ranking in rows:
            latest[(rater, item)] = ranking
        parsed = {key: _ranking_ranks(ranking) for key, ranking in latest.items()}
        rater_index = _index((r for r, _ in latest), raters)
        item_index = _index(i for _, i in latest)
        responses: list[dict[Hashable, int]] = [{} for _ in item_index]
        for (_, item), (ranks, _) in parsed.items():
            columns = responses[item_index[item]]
            for response in ranks:
                columns.setdefault(response, len(columns))
        width = max((len(c) for c in responses), default=0)
        n = len(parsed)
        rank_arr = np.full((n, max(width, 1)), np.nan)
        rater_arr = np.zeros(n, dtype=np.int64)
        item_arr = np.zeros(n, dtype=np.int64)
        tie_arr = np.zeros(n)
        for e, ((rater, item), (ranks, ties)) in enumerate(parsed.items()):
            i = item_index[item]
            rater_arr[e], item_arr[e], tie_arr[e] = rater_index[rater], i, ties
            columns = responses[i]
            for response, rank in ranks.items():
                rank_arr[e, columns[response]] = rank
        order = np.lexsort((rater_arr, item_arr))
        return cls(
            list(rater_index), list(item_index), [list(c) for c in responses],
            rater_arr[order], item_arr[order], rank_arr[order], tie_arr[order],
        )


def _tau_b_pairs(ranks: np.ndarray, e: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between entries e and f on the responses both ranked (NaN if undefined)."""
    width = ranks.shape[1]
    ia, ib = np.triu_indices(width, k=1)
    out = np.full(e.size, np.nan)
    if ia.size == 0:
        return out
    step = max(1, _CHUNK_CELLS // ia.size)
    for start in range(0, e.size, step):
        sl = slice(start, start + step)
        da = ranks[e[sl]][:, ia] - ranks[e[sl]][:, ib]
        db = ranks[f[sl]][:, ia] - ranks[f[sl]][:, ib]
        both = ~np.isnan(da) & ~np.isnan(db)
        sa = np.where(both, np.sign(np.nan_to_num(da)), 0.0)
        sb = np.where(both, np.sign(np.nan_to_num(db)), 0.0)
        out[sl] = _divide((sa * sb).sum(axis=1), np.sqrt((sa * sa).sum(axis=1) * (sb * sb).sum(axis=1)))
    return out


def kendall_tau_matrix(table: RankingTable) -> PairMatrix:
    """Kendall's tau-b for every pair of raters: the mean over their shared items of tau-b on the
    responses both ranked (items where it is undefined, all tied for one of them, are skipped;
    ``n_shared`` counts the items used)."""
    r = len(table.raters)
    e, f = _entry_pairs(table.item)
    tau = _tau_b_pairs(table.ranks, e, f)
    ok = np.isfinite(tau)
    ra, rb, t = table.rater[e][ok], table.rater[f][ok], tau[ok]
    idx = np.concatenate([ra * r + rb, rb * r + ra])
    sums = np.bincount(idx, weights=np.concatenate([t, t]), minlength=r * r).reshape(r, r)
    n = np.bincount(idx, minlength=r * r).reshape(r, r)
    # The diagonal: each rater against their own rankings (1 where tau is defined).
    own = np.arange(table.item.size)
    self_tau = _tau_b_pairs(table.ranks, own, own)
    good = np.isfinite(self_tau)
    diag_n = np.bincount(table.rater[good], minlength=r)
    n[np.arange(r), np.arange(r)] = diag_n
    sums[np.arange(r), np.arange(r)] = diag_n.astype(np.float64)
    return PairMatrix(list(table.raters), {"kendall_tau_b": _divide(sums, n)}, n.astype(np.int64))


def _kendall_w_items(table: RankingTable) -> np.ndarray:
    """Kendall's W with the tie correction for each item (NaN when fewer than two raters or two
    responses, or when undefined), over the responses every rater of the item ranked."""
    n_items = len(table.items)
    m = np.bincount(table.item, minlength=n_items).astype(np.float64)
    valid = ~np.isnan(table.ranks)
    col_count = np.zeros((n_items, table.ranks.shape[1]))
    np.add.at(col_count, table.item, valid.astype(np.float64))
    regular = np.all((col_count == 0) | (col_count == m[:, None]), axis=1)
    rank_sum = np.zeros_like(col_count)
    np.add.at(rank_sum, table.item, np.nan_to_num(table.ranks))
    k = (col_count == m[:, None]).sum(axis=1).astype(np.float64)
    ties = np.bincount(table.item, weights=table.ties, minlength=n_items)
    mean_sum = m * (k + 1) / 2.0
    s = np.where(col_count > 0, (rank_sum - mean_sum[:, None]) ** 2, 0.0).sum(axis=1)
    w = _divide(12.0 * s, m**2 * (k**3 - k) - m * ties)
    w = np.where(regular & (m >= 2) & (k >= 2), w, np.nan)
    # Items whose raters ranked different responses: W on the responses all of them ranked.
    for i in np.nonzero(~regular & (m >= 2))[0]:
        block = table.ranks[table.item == i]
        common = ~np.isnan(block).any(axis=0)
        if common.sum() < 2:
            continue
        sub = rankdata(block[:, common], axis=1)
        kk, mm = float(common.sum()), float(block.shape[0])
        tie_term = 0.0
        for row in sub:
            _, t = np.unique(row, return_counts=True)
            tie_term += float((t**3 - t).sum())
        s_i = float(((sub.sum(axis=0) - mm * (kk + 1) / 2.0) ** 2).sum())
        denom = mm**2 * (kk**3 - kk) - mm * tie_term
        w[i] = 12.0 * s_i / denom if denom > 0 else np.nan
    return w


def kendall_w(table: RankingTable) -> float:
    """Mean over items of Kendall's W (tie-corrected) among the raters of each item."""
    w = _kendall_w_items(table)
    return float(np.nanmean(w)) if np.isfinite(w).any() else math.nan


def _rank_value_counts(table: RankingTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Units (item, response) x distinct rank positions counts, each unit's item, and the values."""
    values = np.unique(table.ranks[~np.isnan(table.ranks)])
    width = table.ranks.shape[1]
    v = values.size
    valid = ~np.isnan(table.ranks)
    unit = (table.item[:, None] * width + np.arange(width)[None, :])[valid]
    code = np.searchsorted(values, table.ranks[valid])
    n_units = len(table.items) * width
    counts = np.bincount(unit * v + code, minlength=n_units * v).reshape(n_units, v)
    unit_item = np.repeat(np.arange(len(table.items)), width)
    return counts, unit_item, values


def ranking_agreement(
    table: RankingTable, *, n_boot: int = DEFAULT_BOOT, seed: int | None = 0
) -> dict[str, Estimate]:
    """Agreement on rankings: ``kendall_tau_b`` (mean over every pair of raters and shared item of
    tau-b), ``kendall_w`` (mean over items, tie-corrected) and ``alpha_ordinal`` (Krippendorff's
    alpha, ordinal, on the mid-rank positions; units are (item, response))."""
    n_items = len(table.items)
    plan = _Plan(n_items)
    e, f = _entry_pairs(table.item)
    tau = _tau_b_pairs(table.ranks, e, f)
    ok = np.isfinite(tau)
    tau_sum = np.bincount(table.item[e][ok], weights=tau[ok], minlength=n_items)
    tau_n = np.bincount(table.item[e][ok], minlength=n_items).astype(np.float64)
    plan.add("kendall_tau_b", plan.columns(np.column_stack([tau_sum, tau_n])), lambda s: _divide(s[:, 0], s[:, 1]),
             int((tau_n > 0).sum()))
    w = _kendall_w_items(table)
    has_w = np.isfinite(w)
    plan.add("kendall_w", plan.columns(np.column_stack([np.where(has_w, w, 0.0), has_w])), lambda s: _divide(s[:, 0], s[:, 1]),
             int(has_w.sum()))
    counts, unit_item, values = _rank_value_counts(table)
    multi = (counts.sum(axis=1) >= 2)
    n_used = int(np.unique(unit_item[multi]).size)
    point = _package_alpha(counts, "ordinal")
    if 0 < values.size <= _MAX_BOOT_VALUES:
        # Units are numbered item * width + k, so an item's units are consecutive rows.
        per_item = _coincidence_columns(counts).reshape(n_items, -1, values.size**2).sum(axis=1)
        plan.add("alpha_ordinal", plan.columns(per_item), _alpha_statistic(True), n_used, point)
        return plan.run(n_boot, seed)
    out = plan.run(n_boot, seed)
    out["alpha_ordinal"] = Estimate(point, math.nan, math.nan, n_used)
    return out
