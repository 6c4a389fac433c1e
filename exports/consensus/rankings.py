"""Rank aggregation over N-way rankings with ties.

A *vote* is a list of tie groups of response ids, best first: ``[[12], [14, 15], [13]]`` says 12 is
best, 14 and 15 are tied, 13 is worst. A pairwise judgment "a better than b" is the vote
``[[a], [b]]`` and a pairwise tie is ``[[a, b]]``. Responses a vote does not mention are not
compared by that vote.

Every method returns a :class:`Preference`: the consensus as tie groups (best first), a score per
response, and how far the raters agreed with it. **Ties are explicit**: responses whose scores are
equal share a group; a method never breaks a tie by position or by id. What a tie means for a
dataset row (skip it, expand it, or order it by position) is decided by the export's tie policy,
in the open, not here.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations

Vote = list[list[int]]

#: Scores closer than this are a tie (Bradley–Terry produces floats; the others are exact).
SCORE_TOLERANCE = 1e-9


@dataclass(slots=True)
class Preference:
    """The consensus ordering of one item's responses."""

    method: str
    groups: tuple[tuple[int, ...], ...]  # tie groups, best first; ids ascending inside a group
    scores: dict[int, float]  # higher is better; the unit depends on the method
    votes: int  # how many votes went in
    agreement: float | None  # share of the votes' ordered pairs that agree with the consensus; None
    # when there is nothing to compare, and for a single vote (one rater agrees with itself: no figure)
    detail: dict = field(default_factory=dict)

    @property
    def has_order(self) -> bool:
        """False when every response is tied: such an item expresses no preference."""
        return len(self.groups) > 1

    def order(self) -> list[int]:
        return [rid for group in self.groups for rid in group]


def _universe(votes: list[Vote]) -> list[int]:
    return sorted({rid for vote in votes for group in vote for rid in group})


def _pair_counts(votes: list[Vote]) -> dict[tuple[int, int], int]:
    """``counts[(a, b)]`` = number of votes that put a strictly above b."""
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for vote in votes:
        seen: list[int] = []
        for group in vote:
            for better in seen:
                for worse in group:
                    counts[(better, worse)] += 1
            seen.extend(group)
    return counts


def _groups_from_scores(scores: dict[int, float], tol: float = SCORE_TOLERANCE) -> tuple[tuple[int, ...], ...]:
    ordered = sorted(scores, key=lambda rid: (-scores[rid], rid))
    groups: list[list[int]] = []
    for rid in ordered:
        if groups and abs(scores[groups[-1][0]] - scores[rid]) <= tol:
            groups[-1].append(rid)
        else:
            groups.append([rid])
    return tuple(tuple(sorted(g)) for g in groups)


def agreement_with(groups: tuple[tuple[int, ...], ...], votes: list[Vote]) -> float | None:
    """Share of (vote, pair) judgments that order a pair the way the consensus does.

    Only pairs the consensus orders (different groups) and the vote orders (different groups)
    count; ``None`` when there is nothing to compare (e.g. everything tied).
    """
    rank_of = {rid: i for i, g in enumerate(groups) for rid in g}
    agree = total = 0
    for vote in votes:
        vote_rank = {rid: i for i, g in enumerate(vote) for rid in g}
        for a, b in combinations(sorted(vote_rank), 2):
            if a not in rank_of or b not in rank_of or rank_of[a] == rank_of[b] or vote_rank[a] == vote_rank[b]:
                continue
            total += 1
            if (rank_of[a] < rank_of[b]) == (vote_rank[a] < vote_rank[b]):
                agree += 1
    return agree / total if total else None


def borda(votes: list[Vote]) -> Preference:
    """Borda count. In each vote a response earns one point per response ranked below it and half
    a point per response tied with it (the standard treatment of ties); responses a vote leaves
    out earn nothing from it. Equal totals are a tie."""
    scores = dict.fromkeys(_universe(votes), 0.0)
    for vote in votes:
        remaining = sum(len(g) for g in vote)
        for group in vote:
            remaining -= len(group)
            for rid in group:
                scores[rid] += remaining + 0.5 * (len(group) - 1)
    groups = _groups_from_scores(scores)
    return Preference("borda", groups, scores, len(votes), agreement_with(groups, votes))


def copeland(votes: list[Vote]) -> Preference:
    """Copeland: for every pair, the response more votes put above the other wins the duel (1
    point), an equal duel gives half a point to each. Equal totals are a tie."""
    universe = _universe(votes)
    counts = _pair_counts(votes)
    scores = dict.fromkeys(universe, 0.0)
    for a, b in combinations(universe, 2):
        ab, ba = counts.get((a, b), 0), counts.get((b, a), 0)
        if ab > ba:
            scores[a] += 1
        elif ba > ab:
            scores[b] += 1
        else:
            scores[a] += 0.5
            scores[b] += 0.5
    groups = _groups_from_scores(scores)
    return Preference("copeland", groups, scores, len(votes), agreement_with(groups, votes))


def _reaches(edges: dict[int, set[int]], start: int, goal: int) -> bool:
    stack, seen = [start], {start}
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def _sccs(nodes: list[int], edges: dict[int, set[int]]) -> dict[int, int]:
    """Strongly connected component id per node (Tarjan, iterative enough for small graphs)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    comp: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    counter = [0]

    def visit(v: int) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp[w] = v
                if w == v:
                    break

    for node in nodes:
        if node not in index:
            visit(node)
    return comp


def ranked_pairs(votes: list[Vote]) -> Preference:
    """Ranked pairs (Tideman). Majorities are locked in from the strongest margin down, skipping
    any that would close a cycle with the majorities already locked.

    Tie policy (stated, order-independent): majorities with *equal* margins are considered
    together. Each one that would close a cycle with the already locked graph is skipped; if the
    rest only clash among themselves (an equal-margin Condorcet cycle), every majority on that
    cycle is skipped and the others are locked. No equal-margin majority is preferred to another
    by position or id.

    The result is layered from the locked graph: the first group is every response nothing beats,
    and so on; responses in one layer are tied.
    """
    universe = _universe(votes)
    counts = _pair_counts(votes)
    majorities: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for a, b in combinations(universe, 2):
        ab, ba = counts.get((a, b), 0), counts.get((b, a), 0)
        if ab > ba:
            majorities[ab - ba].append((a, b))
        elif ba > ab:
            majorities[ba - ab].append((b, a))
    locked: dict[int, set[int]] = defaultdict(set)
    skipped: list[tuple[int, int]] = []
    for margin in sorted(majorities, reverse=True):
        batch = [(w, l) for (w, l) in sorted(majorities[margin]) if not _reaches(locked, l, w)]
        skipped.extend(p for p in majorities[margin] if p not in batch)
        trial: dict[int, set[int]] = defaultdict(set, {k: set(v) for k, v in locked.items()})
        for w, l in batch:
            trial[w].add(l)
        comp = _sccs(universe, trial)
        for w, l in batch:
            if comp[w] == comp[l]:  # on a cycle made only of equal-margin majorities
                skipped.append((w, l))
            else:
                locked[w].add(l)
    # Layer the locked DAG (Kahn): a response's group is the first layer where nothing above it is left.
    indegree = dict.fromkeys(universe, 0)
    for losers in locked.values():
        for l in losers:
            indegree[l] += 1
    groups: list[tuple[int, ...]] = []
    remaining = set(universe)
    while remaining:
        layer = tuple(sorted(rid for rid in remaining if indegree[rid] == 0))
        groups.append(layer)
        remaining -= set(layer)
        for w in layer:
            for l in locked.get(w, ()):
                indegree[l] -= 1
    n = len(groups)
    scores = {rid: float(n - 1 - i) for i, g in enumerate(groups) for rid in g}
    pref_groups = tuple(groups)
    return Preference(
        "ranked-pairs",
        pref_groups,
        scores,
        len(votes),
        agreement_with(pref_groups, votes),
        {"skipped_majorities": sorted(skipped)},
    )


def bradley_terry(votes: list[Vote], *, max_iter: int = 1000, tol: float = 1e-10) -> Preference:
    """Bradley–Terry strengths by Hunter's MM algorithm (2004).

    Every vote contributes its ordered pairs as games (a tie in a vote is half a win each way). A
    weak prior keeps the estimate finite when a response never wins or never loses (otherwise the
    maximum-likelihood strength is 0 or infinite): every response plays one virtual tied game
    against a reference of strength 1, and strengths are rescaled to a geometric mean of 1 after
    each step. Scores are log-strengths; ``detail`` says whether the
    iteration converged and in how many steps.
    """
    universe = _universe(votes)
    wins: dict[int, float] = dict.fromkeys(universe, 0.5)  # the virtual half win vs the reference
    games: dict[tuple[int, int], float] = defaultdict(float)  # (a, b), a < b: games played
    for vote in votes:
        seen: list[int] = []
        for group in vote:
            for better in seen:
                for worse in group:
                    wins[better] += 1
                    games[(min(better, worse), max(better, worse))] += 1
            for a, b in combinations(group, 2):
                wins[a] += 0.5
                wins[b] += 0.5
                games[(min(a, b), max(a, b))] += 1
            seen.extend(group)
    opponents: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for (a, b), n in games.items():
        opponents[a].append((b, n))
        opponents[b].append((a, n))
    p = dict.fromkeys(universe, 1.0)
    converged = False
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - read after the loop
        new = {}
        for i in universe:
            denom = 1.0 / (p[i] + 1.0)  # the virtual game against the reference (strength 1)
            for j, n in opponents[i]:
                denom += n / (p[i] + p[j])
            new[i] = wins[i] / denom
        # Only strength ratios are identified; pinning the geometric mean at the reference's
        # strength (1) removes the slow drift of the overall level that plain MM suffers from.
        log_mean = sum(math.log(v) for v in new.values()) / len(new)
        new = {i: v / math.exp(log_mean) for i, v in new.items()}
        change = max(abs(math.log(new[i]) - math.log(p[i])) for i in universe) if universe else 0.0
        p = new
        if change < tol:
            converged = True
            break
    scores = {rid: math.log(p[rid]) for rid in universe}
    # Iterated floats: strengths within 1e-6 in log space (far below any real difference) are a tie.
    groups = _groups_from_scores(scores, 1e-6)
    return Preference(
        "bradley-terry",
        groups,
        scores,
        len(votes),
        agreement_with(groups, votes),
        {"converged": converged, "iterations": iteration},
    )


RANKING_METHODS = {
    "borda": borda,
    "copeland": copeland,
    "ranked-pairs": ranked_pairs,
    "bradley-terry": bradley_terry,
}


def rank(method: str, votes: list[Vote]) -> Preference:
    try:
        fn = RANKING_METHODS[method]
    except KeyError:
        raise ValueError(f"Unknown ranking method {method!r}; choose one of {', '.join(RANKING_METHODS)}.") from None
    pref = fn(votes)
    if len(votes) < 2:
        pref.agreement = None  # one rater: agreement is undefined, not 1.0
    return pref
