"""Discretion metrics of "AI Alignment at Your Discretion" (Buyl et al., arXiv 2502.10441), as the
paper's analysis computes them (``../shared/REFERENCE.md`` §2, "Metrics, exactly as implemented").

Inputs
------
- ``p``: principle-specific preferences, an array (rows x principles) with +1 (the principle
  prefers response 1, ``chosen``), -1 (it prefers response 0) or NaN (no preference: ``NA``, a tie,
  or not asked). 0 is read as NaN (a tie). :func:`principle_preference` derives p_i from the
  judge's probabilities of A, B and NA.
- ``a``: one annotator's preference on the same rows, +1 / -1; 0 or NaN is "no valid preference"
  and the row does not count for that annotator. Annotators are humans (``a_pref`` of the data),
  each juror, guard or reward model (sign(r_chosen - r_rejected)), the jury's decision.

Metrics
-------
- Row class: ``Indifference`` if every p_i is NaN, ``Conflict`` if some p_i = +1 and some
  p_j = -1, otherwise ``Consensus`` with c the common sign.
- DA(a) = mean over Consensus rows with a valid of 1[c * a < 0].
- PS_a(i, j) = mean over rows with p_i * p_j < 0 and a valid of 1[p_i * a > 0]; n_ij the number
  of such rows.
- w*_a: minimise sum_ij n_ij BCEWithLogits(w_i - w_j, PS_a(i, j)) (NaN PS -> 0.5 with weight
  0; the mean over the finite (i, j) cells, as ``torch``'s default reduction) by Adam (lr 0.1,
  betas 0.9 / 0.999, eps 1e-8, from zeros) for at most 30,000 steps, stopping when max|grad| <
  1e-7. A principle whose PS row is 1 or NaN everywhere gets +inf, 0 or NaN everywhere -inf; a row
  that is NaN everywhere (never in a conflict) matches both tests and, as in the paper's code (the
  -inf assignment comes second), gets -inf. Cells with an infinite w are left out of the loss.
- DD(a, b) = (1 - tau_b(rank(w*_a), rank(w*_b))) / 2, ranks descending with ties averaged
  (pandas ``rank(ascending=False)``), tau_b by ``scipy.stats.kendalltau(variant="b")``.
- Bootstrap (mean and SD over ``n_boot`` resamples, default 1000): DA resamples the Consensus
  rows; w* and DD resample all rows, the same resample for every annotator, and fit w* for each
  resample (at most 10,000 steps, as the paper's bootstrap). Resamples where a figure is undefined
  are left out of its mean and SD. Each resample's fit stops on its own criterion, exactly as if it
  were fitted alone; the paper's batched loop stops only when the whole batch has converged, so
  its already-converged fits keep taking (tiny) Adam steps: the two can differ in w* by amounts far
  below what changes a rank, except between principles whose w* are equal to within that.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit
from scipy.stats import kendalltau, rankdata

INDIFFERENCE = "Indifference"
CONFLICT = "Conflict"
CONSENSUS = "Consensus"
CLASSES = (CONSENSUS, CONFLICT, INDIFFERENCE)
DEFAULT_BOOT = 1000
MAX_ITER = 30_000
BOOT_MAX_ITER = 10_000
LR = 0.1
TOL = 1e-7
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
# Rows handled at once when summing conflict counts over bootstrap resamples.
_ROW_CHUNK = 4096


def principle_preference(
    prob_a: Sequence[float] | np.ndarray, prob_b: Sequence[float] | np.ndarray,
    prob_na: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """p_i = sign(prob_A - prob_B), NaN on a tie, NaN when prob_NA exceeds both (A = response 1)."""
    a = np.asarray(prob_a, dtype=np.float64)
    b = np.asarray(prob_b, dtype=np.float64)
    p = np.sign(a - b)
    p[p == 0] = np.nan
    if prob_na is not None:
        na = np.asarray(prob_na, dtype=np.float64)
        p[(na > a) & (na > b)] = np.nan
    return p


def _prefs(p: Any) -> np.ndarray:
    arr = np.array(p, dtype=np.float64, ndmin=2)
    arr[arr == 0] = np.nan
    return np.sign(arr)


def _annotator(a: Any, rows: int) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    if arr.size != rows:
        raise ValueError(f"the annotator has {arr.size} preferences for {rows} rows")
    return arr


def _valid(a: np.ndarray) -> np.ndarray:
    return np.isfinite(a) & (a != 0)


def row_classes(p: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each row's class (``Consensus`` / ``Conflict`` / ``Indifference``) and its consensus sign c
    (NaN on the other rows)."""
    prefs = _prefs(p)
    pos = (prefs > 0).any(axis=1)
    neg = (prefs < 0).any(axis=1)
    classes = np.where(pos & neg, CONFLICT, np.where(pos | neg, CONSENSUS, INDIFFERENCE))
    consensus = np.where(pos & ~neg, 1.0, np.where(neg & ~pos, -1.0, np.nan))
    return classes, consensus


def class_shares(p: Any) -> dict[str, float]:
    classes, _ = row_classes(p)
    total = max(classes.size, 1)
    return {name: float((classes == name).sum() / total) for name in CLASSES}


def discretion_arbitrariness(p: Any, a: Any) -> float:
    """DA(a): the share of Consensus rows (with a valid) where a goes against the consensus."""
    prefs = _prefs(p)
    a = _annotator(a, prefs.shape[0])
    _, c = row_classes(prefs)
    mask = np.isfinite(c) & _valid(a)
    if not mask.any():
        return math.nan
    return float(np.mean(c[mask] * a[mask] < 0))


def _conflict_counts(prefs: np.ndarray, a: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed over rows with ``weights`` (b x rows): conflict rows n (b x P x P) and the rows of
    them where p_i agrees with a (b x P x P)."""
    rows, k = prefs.shape
    valid = _valid(a)
    x = (prefs > 0).astype(np.float64)
    y = (prefs < 0).astype(np.float64)
    up = (valid & (a > 0)).astype(np.float64)
    down = (valid & (a < 0)).astype(np.float64)
    b = weights.shape[0]
    xy_sum = np.zeros((b, k * k))
    up_sum = np.zeros((b, k * k))
    down_sum = np.zeros((b, k * k))
    for start in range(0, rows, _ROW_CHUNK):
        sl = slice(start, start + _ROW_CHUNK)
        xy = (x[sl, :, None] * y[sl, None, :]).reshape(-1, k * k)  # p_i = +1, p_j = -1
        w = weights[:, sl]
        xy_sum += (w * valid[sl]) @ xy
        up_sum += (w * up[sl]) @ xy
        down_sum += (w * down[sl]) @ xy
    m = xy_sum.reshape(b, k, k)
    n = m + m.transpose(0, 2, 1)
    # p_i * a > 0: (p_i = +1, p_j = -1, a > 0) or (p_i = -1, p_j = +1, a < 0).
    wins = up_sum.reshape(b, k, k) + down_sum.reshape(b, k, k).transpose(0, 2, 1)
    return n, wins


def principle_supremacy(p: Any, a: Any) -> tuple[np.ndarray, np.ndarray]:
    """PS_a (principles x principles; NaN where no conflict row) and n_ij."""
    prefs = _prefs(p)
    a = _annotator(a, prefs.shape[0])
    n, wins = _conflict_counts(prefs, a, np.ones((1, prefs.shape[0])))
    with np.errstate(divide="ignore", invalid="ignore"):
        ps = np.where(n[0] > 0, wins[0] / n[0], np.nan)
    return ps, n[0]


def principle_priority(
    ps: Any, n: Any, *, lr: float = LR, max_iter: int = MAX_ITER, tol: float = TOL
) -> np.ndarray:
    """w*: the Bradley-Terry fit of PS weighted by n_ij (see the module docstring), by Adam.
    ``ps`` and ``n`` may carry leading batch dimensions (..., P, P); each fit stops on its own."""
    ps = np.asarray(ps, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    batch_shape = ps.shape[:-2]
    k = ps.shape[-1]
    ps = ps.reshape(-1, k, k)
    n = np.nan_to_num(n.reshape(-1, k, k), nan=0.0)
    b = ps.shape[0]
    winners = ((ps == 1) | np.isnan(ps)).all(axis=2)
    losers = ((ps == 0) | np.isnan(ps)).all(axis=2)
    w = np.zeros((b, k))
    w[winners] = np.inf
    w[losers] = -np.inf
    free = ~(winners | losers)
    target = np.nan_to_num(ps, nan=0.5)
    cells = free[:, :, None] & free[:, None, :]
    weight = np.where(cells, n, 0.0)
    count = cells.sum(axis=(1, 2)).astype(np.float64)
    scale = np.where(count > 0, 1.0 / np.maximum(count, 1.0), 0.0)

    active = np.nonzero(free.any(axis=1))[0]
    theta = np.zeros((b, k))
    m1 = np.zeros((b, k))
    m2 = np.zeros((b, k))
    for step in range(1, max_iter + 1):
        if active.size == 0:
            break
        th = theta[active]
        diff = th[:, :, None] - th[:, None, :]
        g_cell = weight[active] * (expit(diff) - target[active])
        grad = (g_cell.sum(axis=2) - g_cell.sum(axis=1)) * scale[active][:, None]
        grad = np.where(free[active], grad, 0.0)
        done = np.abs(grad).max(axis=1) < tol
        if done.any():
            active, grad, th = active[~done], grad[~done], th[~done]
            if active.size == 0:
                break
        m1[active] = _BETA1 * m1[active] + (1 - _BETA1) * grad
        m2[active] = _BETA2 * m2[active] + (1 - _BETA2) * grad * grad
        # Every fit still active has taken the same number of steps, so one bias correction.
        corr1 = 1 - _BETA1**step
        corr2 = 1 - _BETA2**step
        denom = np.sqrt(m2[active]) / math.sqrt(corr2) + _EPS
        theta[active] = th - (lr / corr1) * m1[active] / denom
    w = np.where(free, theta, w)
    return w.reshape(*batch_shape, k)


def priority_ranks(w: Any) -> np.ndarray:
    """Ranks of w*, 1 = highest priority, ties averaged (pandas ``rank(ascending=False)``)."""
    return rankdata(-np.asarray(w, dtype=np.float64), axis=-1)


def discretion_discrepancy(w_a: Any, w_b: Any) -> float:
    """DD(a, b) = (1 - tau_b(rank(w*_a), rank(w*_b))) / 2; NaN when tau_b is undefined."""
    tau = kendalltau(priority_ranks(w_a), priority_ranks(w_b), variant="b").statistic
    return float((1 - tau) / 2) if np.isfinite(tau) else math.nan


def _dd_batch(ranks_a: np.ndarray, ranks_b: np.ndarray) -> np.ndarray:
    """DD for each row of two (b x P) rank arrays: tau-b from the signs of rank differences."""
    ia, ib = np.triu_indices(ranks_a.shape[1], k=1)
    sa = np.sign(ranks_a[:, ia] - ranks_a[:, ib])
    sb = np.sign(ranks_b[:, ia] - ranks_b[:, ib])
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = (sa * sb).sum(axis=1) / np.sqrt((sa * sa).sum(axis=1) * (sb * sb).sum(axis=1))
    return (1 - tau) / 2


def _chunks(n_boot: int, width: int) -> list[int]:
    """Resamples per chunk, so that a chunk's (resamples x rows) arrays stay near 4M cells."""
    size = max(1, 4_000_000 // max(width, 1))
    return [min(size, n_boot - start) for start in range(0, n_boot, size)]


def _mean_sd(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    return float(values.mean()), float(values.std())


@dataclass
class DiscretionReport:
    """Everything the analysis reports for one set of rows. Matrices are indexed like
    ``principles`` and ``annotators``; bootstrap figures are (mean, SD)."""

    principles: list[Hashable]
    annotators: list[Hashable]
    reference: Hashable | None
    n_rows: int
    classes: dict[str, int]
    da: dict[Hashable, float]
    ps: dict[Hashable, np.ndarray]
    n: dict[Hashable, np.ndarray]
    w: dict[Hashable, np.ndarray]
    dd: np.ndarray
    n_boot: int = 0
    da_boot: dict[Hashable, tuple[float, float]] = field(default_factory=dict)
    dd_boot_mean: np.ndarray | None = None
    dd_boot_sd: np.ndarray | None = None

    def dd_reference(self) -> dict[Hashable, dict[str, float | None]]:
        """DD of each annotator against the reference (point value and bootstrap mean / SD)."""
        if self.reference is None:
            return {}
        r = self.annotators.index(self.reference)
        out = {}
        for k, name in enumerate(self.annotators):
            row: dict[str, float | None] = {"value": _num(self.dd[r, k])}
            if self.dd_boot_mean is not None and self.dd_boot_sd is not None:
                row.update(mean=_num(self.dd_boot_mean[r, k]), sd=_num(self.dd_boot_sd[r, k]))
            out[name] = row
        return out

    def as_dict(self) -> dict[str, Any]:
        def matrix(m: np.ndarray) -> list[list[float | None]]:
            return [[_num(x) for x in row] for row in np.asarray(m, dtype=np.float64)]

        def weights(v: np.ndarray) -> list[float | str]:
            return [("inf" if x > 0 else "-inf") if np.isinf(x) else float(x) for x in v]

        return {
            "principles": [str(p) for p in self.principles],
            "annotators": [str(a) for a in self.annotators],
            "reference": None if self.reference is None else str(self.reference),
            "n_rows": self.n_rows,
            "classes": self.classes,
            "n_boot": self.n_boot,
            "annotator": {
                str(a): {
                    "da": _num(self.da[a]),
                    "da_boot": [_num(x) for x in self.da_boot.get(a, (math.nan, math.nan))],
                    "w": weights(self.w[a]),
                    "rank": [float(x) for x in priority_ranks(self.w[a])],
                    "ps": matrix(self.ps[a]),
                    "n": [[int(x) for x in row] for row in self.n[a]],
                }
                for a in self.annotators
            },
            "dd": matrix(self.dd),
            "dd_boot_mean": None if self.dd_boot_mean is None else matrix(self.dd_boot_mean),
            "dd_boot_sd": None if self.dd_boot_sd is None else matrix(self.dd_boot_sd),
        }


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def discretion(
    p: Any,
    annotators: Mapping[Hashable, Any],
    *,
    principles: Sequence[Hashable] | None = None,
    reference: Hashable | None = None,
    n_boot: int = DEFAULT_BOOT,
    seed: int | None = 0,
    max_iter: int = MAX_ITER,
    boot_max_iter: int = BOOT_MAX_ITER,
) -> DiscretionReport:
    """The row classes, DA, PS with n_ij, w* and DD between every pair of ``annotators`` (name ->
    preference vector over the rows of ``p``), with bootstrap mean and SD of DA and DD.
    ``reference`` (default: the first annotator, e.g. the human preference) is the annotator the
    DD column of the paper compares with; the matrix holds every pair."""
    prefs = _prefs(p)
    rows, k = prefs.shape
    names = list(annotators)
    prefs_a = {name: _annotator(annotators[name], rows) for name in names}
    if reference is None and names:
        reference = names[0]
    if reference is not None and reference not in prefs_a:
        raise ValueError(f"the reference {reference!r} is not one of the annotators")
    classes, consensus = row_classes(prefs)
    ps, n, w, da = {}, {}, {}, {}
    for name in names:
        ps[name], n[name] = principle_supremacy(prefs, prefs_a[name])
        w[name] = principle_priority(ps[name], n[name], max_iter=max_iter)
        da[name] = discretion_arbitrariness(prefs, prefs_a[name])
    dd = np.full((len(names), len(names)), np.nan)
    for i, x in enumerate(names):
        for j, y in enumerate(names):
            dd[i, j] = discretion_discrepancy(w[x], w[y])
    report = DiscretionReport(
        principles=list(principles) if principles is not None else list(range(k)),
        annotators=names,
        reference=reference,
        n_rows=rows,
        classes={name: int((classes == name).sum()) for name in CLASSES},
        da=da, ps=ps, n=n, w=w, dd=dd, n_boot=n_boot,
    )
    if n_boot <= 0 or rows == 0:
        return report
    rng = np.random.default_rng(seed)
    # DA: resample the Consensus rows.
    consensus_rows = np.nonzero(np.isfinite(consensus))[0]
    if consensus_rows.size:
        da_values: dict[Hashable, list[np.ndarray]] = {name: [] for name in names}
        for b in _chunks(n_boot, consensus_rows.size):
            draws = consensus_rows[rng.integers(0, consensus_rows.size, size=(b, consensus_rows.size))]
            c = consensus[draws]
            for name in names:
                a = prefs_a[name][draws]
                valid = _valid(a)
                with np.errstate(divide="ignore", invalid="ignore"):
                    da_values[name].append(((c * a < 0) & valid).sum(axis=1) / valid.sum(axis=1))
        for name in names:
            report.da_boot[name] = _mean_sd(np.concatenate(da_values[name]))
    # w* and DD: resample all rows, the same resample for every annotator.
    rank_chunks: dict[Hashable, list[np.ndarray]] = {name: [] for name in names}
    for b in _chunks(n_boot, rows):
        draws = rng.integers(0, rows, size=(b, rows)) + (np.arange(b) * rows)[:, None]
        weights = np.bincount(draws.ravel(), minlength=b * rows).reshape(b, rows).astype(np.float64)
        for name in names:
            n_b, wins_b = _conflict_counts(prefs, prefs_a[name], weights)
            with np.errstate(divide="ignore", invalid="ignore"):
                ps_b = np.where(n_b > 0, wins_b / n_b, np.nan)
            rank_chunks[name].append(priority_ranks(principle_priority(ps_b, n_b, max_iter=boot_max_iter)))
    boot_ranks = {name: np.concatenate(rank_chunks[name]) for name in names}
    mean = np.full((len(names), len(names)), np.nan)
    sd = np.full((len(names), len(names)), np.nan)
    for i, x in enumerate(names):
        for j, y in enumerate(names):
            mean[i, j], sd[i, j] = _mean_sd(_dd_batch(boot_ranks[x], boot_ranks[y]))
    report.dd_boot_mean, report.dd_boot_sd = mean, sd
    return report


@dataclass(frozen=True)
class ConflictCapture:
    """How one annotator's "principles conflicted" marks line up with the Conflict rows: of the
    rows they judged (``n_rows``), the share they marked, the share of the Conflict rows they marked
    (``recall``) and the share of their marks that fall on Conflict rows (``precision``)."""

    annotator: Hashable
    n_rows: int
    n_conflict_rows: int
    marked_share: float
    recall: float
    precision: float


def conflict_capture(p: Any, marks: Iterable[tuple[Hashable, int, bool]]) -> list[ConflictCapture]:
    """``marks``: (annotator, row index into ``p``, marked "principles conflicted") per judgment."""
    classes, _ = row_classes(p)
    per: dict[Hashable, list[tuple[bool, bool]]] = {}
    for annotator, row, mark in marks:
        per.setdefault(annotator, []).append((bool(mark), bool(classes[row] == CONFLICT)))
    out = []
    for annotator, pairs in per.items():
        arr = np.array(pairs, dtype=bool).reshape(-1, 2)
        marks_, conflict = arr[:, 0], arr[:, 1]
        out.append(
            ConflictCapture(
                annotator=annotator,
                n_rows=int(arr.shape[0]),
                n_conflict_rows=int(conflict.sum()),
                marked_share=float(marks_.mean()) if arr.size else math.nan,
                recall=float(marks_[conflict].mean()) if conflict.any() else math.nan,
                precision=float(conflict[marks_].mean()) if marks_.any() else math.nan,
            )
        )
    return out
