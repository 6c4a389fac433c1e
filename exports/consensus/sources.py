"""Which records count: the source policy.

Records are the newest record of each correction chain (a record with ``supersedes`` replaces the
one it points at). ``import`` records are imported *human* labels (HH-RLHF preferences, oasst
rankings, Aegis labels) and count as human evidence.

- ``human-only``: human and imported records;
- ``jury-only``: jury records;
- ``human-with-jury-fallback``: human and imported records where an item has any, else the jury's;
- ``adjudicated-only``: adjudication records.

**Adjudicated records override the others under every policy**: when an item has an adjudication
record for a task, only adjudication records decide that task for that item (an adjudicator saw
everyone's answers and ruled), so even ``jury-only`` reports the adjudicator's ruling there (its
label source says ``adjudication``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

SOURCE_POLICIES = ("human-only", "jury-only", "human-with-jury-fallback", "adjudicated-only")
HUMAN_SOURCES = frozenset({"human", "import"})


class HasSource(Protocol):
    source: str


R = TypeVar("R", bound=HasSource)


def select_records(records: Sequence[R], policy: str) -> tuple[list[R], str]:
    """The records that decide, and the label source to report (sources joined by ``+``, sorted;
    ``""`` when nothing qualifies)."""
    if policy not in SOURCE_POLICIES:
        raise ValueError(f"Unknown source policy {policy!r}; choose one of {', '.join(SOURCE_POLICIES)}.")
    adjudicated = [r for r in records if r.source == "adjudication"]
    if adjudicated:
        chosen = adjudicated
    elif policy == "adjudicated-only":
        chosen = []
    elif policy == "jury-only":
        chosen = [r for r in records if r.source == "jury"]
    else:
        chosen = [r for r in records if r.source in HUMAN_SOURCES]
        if not chosen and policy == "human-with-jury-fallback":
            chosen = [r for r in records if r.source == "jury"]
    if len(chosen) == 1:  # the common case; the same string as the general expression below
        return chosen, chosen[0].source
    return chosen, "+".join(sorted({r.source for r in chosen}))
