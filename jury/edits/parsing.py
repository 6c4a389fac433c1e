"""Reading an editor's output, and the word-level edit distance that decides what is kept.

The reference format (REFERENCE §3)::

    Numbered List of edits made: {Edit 1} ||| {Edit 2} ...
    Hallucinated Response: <the edited text>

``parse_edit_output`` takes the text after the LAST answer marker (any of ``MARKERS``, any case,
with or without a colon or markdown emphasis), and the ``|||``-separated edit list before it.
When a model ignores the format it recovers, in order: a fenced code block; the text after an
"edits made" list whose items end in a blank line; else the whole output with obvious chatter
("Sure, here is ...:") stripped. ``mode`` records which rule read it. Pure functions, no Django.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKERS = (
    "hallucinated response", "hallucinated summary", "corrupted response", "improved response",
    "edited response", "revised response", "final response", "edited text",
)
_MARKER_RE = re.compile(
    r"^[ \t>*_#-]*(?:" + "|".join(re.escape(m) for m in MARKERS) + r")[ \t*_]*:[ \t*_]*",
    re.IGNORECASE | re.MULTILINE,
)
_EDITS_RE = re.compile(r"^[ \t>*_#-]*(?:numbered\s+list\s+(?:of\s+)?)?(?:hallucination\s+)?edits\s+made\b[^:\n]*:",
                       re.IGNORECASE | re.MULTILINE)
_FENCE_RE = re.compile(r"```[a-zA-Z]*\n(.*?)```", re.DOTALL)
_CHATTER_RE = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|here(?:'s| is| are))\b[^\n]*?:\s*\n", re.IGNORECASE
)
_WORD_RE = re.compile(r"\S+")
_PLACEHOLDER_RE = re.compile(r"<[^<>\n]{1,60}>")  # the template's "<the edited response>", echoed back


@dataclass
class ParsedEdit:
    text: str
    operations: list[str] = field(default_factory=list)
    mode: str = "marker"  # marker | fenced | after-edits | whole | empty


def _operations(block: str) -> list[str]:
    block = block.strip()
    if not block:
        return []
    parts = block.split("|||") if "|||" in block else re.split(r"\n\s*(?:\d+[.)]|[-*])\s+", "\n" + block)
    return [re.sub(r"^\s*(?:\d+[.)]|[-*])\s*", "", p).strip().strip("{}").strip() for p in parts if p.strip()]


def _clean(text: str) -> str:
    text = text.strip()
    # a model that wraps its answer in quotes or a stray code fence
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text.strip("`").strip()


def parse_edit_output(raw: str) -> ParsedEdit:
    raw = (raw or "").replace("\r\n", "\n")
    markers = list(_MARKER_RE.finditer(raw))
    if markers:
        last = markers[-1]
        before = raw[: last.start()]
        edits_at = list(_EDITS_RE.finditer(before))
        ops = _operations(before[edits_at[-1].end():]) if edits_at else []
        text = _clean(raw[last.end():])
        if _PLACEHOLDER_RE.fullmatch(text):
            return ParsedEdit(text="", operations=ops, mode="empty")
        return ParsedEdit(text=text, operations=ops, mode="marker")
    fenced = _FENCE_RE.findall(raw)
    if fenced:
        edits_at = list(_EDITS_RE.finditer(raw))
        ops = _operations(raw[edits_at[-1].end(): raw.find("```")]) if edits_at else []
        return ParsedEdit(text=_clean(fenced[-1]), operations=ops, mode="fenced")
    edits_at = list(_EDITS_RE.finditer(raw))
    if edits_at:
        rest = raw[edits_at[-1].end():]
        head, sep, tail = rest.partition("\n\n")
        if sep and tail.strip():
            return ParsedEdit(text=_clean(tail), operations=_operations(head), mode="after-edits")
    text = _CHATTER_RE.sub("", raw.strip(), count=1)
    text = _clean(text)
    return ParsedEdit(text=text, operations=[], mode="whole" if text else "empty")


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text or "")


def word_edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance over words (insert, delete, substitute: 1 each); O(len(a)·len(b))."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, wa in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, wb in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (wa != wb))
        previous = current
    return previous[-1]


def word_distance_ratio(source: str, edited: str) -> float:
    """Word-level edit distance divided by the source's word count (1.0 for an empty source that
    gained words, 0.0 for two empty texts)."""
    a, b = words(source), words(edited)
    if not a:
        return 1.0 if b else 0.0
    return word_edit_distance(a, b) / len(a)


def extra_words(source: str, edited: str) -> int:
    """How many more words the edit has than the source (never negative)."""
    return max(0, len(words(edited)) - len(words(source)))


@dataclass(frozen=True)
class Bounds:
    """The kept band of the word-distance ratio, and the most extra words (None: no limit)."""

    min_ratio: float = 0.01
    max_ratio: float = 0.6
    max_extra_words: int | None = None


def judge_edit(source: str, parsed: ParsedEdit, bounds: Bounds) -> tuple[float | None, str]:
    """(word distance ratio, discard reason): the reason is "" when the edit is kept."""
    if parsed.mode == "empty" or not parsed.text.strip():
        return None, "unparseable: the editor's output holds no edited text"
    ratio = word_distance_ratio(source, parsed.text)
    if ratio == 0.0 or ratio < bounds.min_ratio:
        what = "changes nothing" if ratio == 0.0 else "changes too little"
        return ratio, f"{what}: word distance {ratio:.3f} < minimum {bounds.min_ratio:.3f}"
    if ratio > bounds.max_ratio:
        return ratio, f"rewrites nearly everything: word distance {ratio:.3f} > maximum {bounds.max_ratio:.3f}"
    if bounds.max_extra_words is not None:
        extra = extra_words(source, parsed.text)
        if extra > bounds.max_extra_words:
            return ratio, f"adds {extra} words > the limit of {bounds.max_extra_words}"
    return ratio, ""
