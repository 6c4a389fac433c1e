"""A word-level diff of an original response and its edit, for the edit review page.

The texts are cut into words, runs of whitespace and single punctuation marks; difflib's
SequenceMatcher (without its "junk" heuristic, which would drop common words from the matching)
aligns the two token lists and the runs are merged into segments. The page renders each segment
as escaped text in ``<ins>`` / ``<del>`` / plain: marked by underline and strike-through, not by
colour alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)

EQUAL, INSERT, DELETE = "equal", "insert", "delete"


@dataclass(frozen=True)
class Segment:
    op: str  # equal | insert | delete
    text: str


def tokens(text: str) -> list[str]:
    """Words, whitespace runs and punctuation marks; joined again they give ``text`` back."""
    return _TOKEN.findall(text)


def word_diff(original: str, edit: str) -> list[Segment]:
    """Segments that turn ``original`` into ``edit``: the equal and deleted segments joined give the
    original, the equal and inserted ones the edit. A replacement is its deletion, then its insertion."""
    a, b = tokens(original), tokens(edit)
    out: list[Segment] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if out and out[-1].op == op:
            out[-1] = Segment(op, out[-1].text + text)
        else:
            out.append(Segment(op, text))

    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add(EQUAL, "".join(a[i1:i2]))
            continue
        if tag in ("delete", "replace"):
            add(DELETE, "".join(a[i1:i2]))
        if tag in ("insert", "replace"):
            add(INSERT, "".join(b[j1:j2]))
    return out


def changed_words(segments: list[Segment]) -> tuple[int, int]:
    """(words inserted, words deleted) in ``segments``: what the page sums up above the diff."""
    count = {INSERT: 0, DELETE: 0}
    for s in segments:
        if s.op in count:
            count[s.op] += len(re.findall(r"\w+", s.text))
    return count[INSERT], count[DELETE]
