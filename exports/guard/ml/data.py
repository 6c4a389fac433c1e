"""Guard examples, the seeded split by item, provenance (sha256, counts) and the batch collator.

An :class:`Example` is one classification: a prompt alone (is the user turn unsafe?) or a prompt
with a response (is the response unsafe?). Aegis labels both, so one Aegis row gives up to two
examples; both keep the row's item key, so they always land in the same split.

No torch at module level: the Django side builds examples; only the collator's call uses torch.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class GuardDataError(ValueError):
    """Training or evaluation data that cannot be used; the message says what and where."""


@dataclass(frozen=True)
class Example:
    key: str  # the item it comes from: the split unit
    prompt: str
    response: str | None  # None: a prompt-only example
    label: int  # 1 unsafe, 0 safe
    categories: tuple[str, ...] | None  # codes; None when unknown (then the category loss skips it)
    # codes whose label is unknown for this example though others are known (OpenAI moderation
    # samples): evaluation masks them out per category
    unknown_categories: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out = {"key": self.key, "prompt": self.prompt, "response": self.response, "label": self.label,
               "categories": None if self.categories is None else list(self.categories)}
        if self.unknown_categories:  # only when set, so existing data keeps its sha256
            out["unknown_categories"] = list(self.unknown_categories)
        return out


def split_by_item(examples: Sequence[Example], *, share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, validation): an item goes to validation when sha256(seed:key) falls under ``share``.
    The same seed and key always give the same side, whichever other items are present."""
    train: list[Example] = []
    val: list[Example] = []
    prefix = f"{seed}:".encode()
    for ex in examples:
        u = int.from_bytes(hashlib.sha256(prefix + ex.key.encode()).digest()[:8], "big") / 2**64
        (val if u < share else train).append(ex)
    return train, val


def data_sha256(examples: Sequence[Example]) -> str:
    """sha256 of the examples as canonical JSON lines, in order: the training data's identity."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps(ex.as_json(), sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def data_counts(examples: Sequence[Example]) -> dict[str, Any]:
    cats: Counter = Counter()
    for ex in examples:
        if ex.label and ex.categories:
            cats.update(ex.categories)
    return {
        "examples": len(examples),
        "items": len({ex.key for ex in examples}),
        "unsafe": sum(ex.label for ex in examples),
        "safe": sum(1 for ex in examples if not ex.label),
        "with_response": sum(1 for ex in examples if ex.response is not None),
        "categories_known": sum(1 for ex in examples if ex.categories is not None),
        "categories": dict(sorted(cats.items())),
    }


def category_targets(categories: tuple[str, ...] | None, codes: Sequence[str]) -> tuple[list[float], float]:
    """Multi-hot targets in head order, and the mask (0.0 when the categories are unknown).

    >>> category_targets(("S3", "S1"), ["S1", "S2", "S3"])
    ([1.0, 0.0, 1.0], 1.0)
    >>> category_targets(None, ["S1", "S2"])
    ([0.0, 0.0], 0.0)
    """
    if categories is None:
        return [0.0] * len(codes), 0.0
    chosen = set(categories)
    return [1.0 if c in chosen else 0.0 for c in codes], 1.0


@dataclass
class GuardCollator:
    """Tokenises examples (prompt and response as a sentence pair, truncated longest first) and
    pads them into one batch with the binary label, category targets and category mask.

    >>> class Tok:  # a stand-in tokenizer: one id per word, 0 pads
    ...     def __call__(self, text, pair=None, truncation=None, max_length=None):
    ...         ids = [len(w) for w in (text + " " + (pair or "")).split()][:max_length]
    ...         return {"input_ids": ids, "attention_mask": [1] * len(ids)}
    ...     def pad(self, feats, return_tensors=None):
    ...         import torch
    ...         n = max(len(f["input_ids"]) for f in feats)
    ...         return {k: torch.tensor([f[k] + [0] * (n - len(f[k])) for f in feats]) for k in ("input_ids", "attention_mask")}
    >>> batch = GuardCollator(Tok(), ["S1", "S2"], max_length=8)(
    ...     [Example("a", "hi there", None, 0, ()), Example("b", "how to", "no way", 1, ("S2",))])
    >>> batch["input_ids"].tolist(), batch["labels"].tolist()
    ([[2, 5, 0, 0], [3, 2, 2, 3]], [0.0, 1.0])
    >>> batch["category_targets"].tolist(), batch["category_mask"].tolist()
    ([[0.0, 0.0], [0.0, 1.0]], [1.0, 1.0])
    """

    tokenizer: Any
    codes: Sequence[str]
    max_length: int = 256

    def __call__(self, examples: Sequence[Example]) -> dict[str, Any]:
        import torch

        feats = []
        for ex in examples:
            enc = self.tokenizer(ex.prompt, ex.response, truncation=True, max_length=self.max_length)
            feats.append({"input_ids": list(enc["input_ids"]), "attention_mask": list(enc["attention_mask"])})
        batch = dict(self.tokenizer.pad(feats, return_tensors="pt"))
        targets, mask = zip(*(category_targets(ex.categories, self.codes) for ex in examples))
        batch["labels"] = torch.tensor([float(ex.label) for ex in examples])  # [B]
        batch["category_targets"] = torch.tensor(list(targets), dtype=torch.float32).reshape(len(examples), len(self.codes))  # [B, K]
        batch["category_mask"] = torch.tensor(list(mask), dtype=torch.float32)  # [B]
        return batch
