"""SALT token alignment (SYNFAC-EDIT, REFERENCE §3): Needleman–Wunsch on token ids, C / I / D / S
labels and the per-token weights of the SALT loss.

Pure and torch-free: it works on lists of token ids. ``S_generated`` is the rejected text (what the
model wrote, or the original a corrupt edit damaged) and ``S_edited`` the chosen one. The two id
sequences are aligned globally with match +1, mismatch −1, gap −1, and every aligned position is
labelled:

====  =========================  ================  ===================
label meaning                    weight on edited  weight on generated
====  =========================  ================  ===================
C     same token                 +1                +1.0
I     gap in generated           +1                (no token)
D     gap in edited              (no token)        −0.1
S     substitution               +1                −0.1
====  =========================  ================  ===================

so ``edited_weights`` has one weight per edited token and ``generated_weights`` one per generated
token, in token order (the reference's ``get_position_status``). Aligned sequences mark a gap with
``GAP`` (−100, the reference's and Hugging Face's ignore id).

Ties: several alignments can share the best score (``a b`` against ``b a``). The traceback runs
from the end and, on equal scores, prefers the diagonal (C or S), then D, then I, so the output is
one fixed alignment, not whichever the matrix happened to give.

>>> a = align([5, 6, 7], [5, 9, 7, 8])
>>> a.labels
['C', 'S', 'C', 'I']
>>> a.generated_weights, a.edited_weights
([1.0, -0.1, 1.0], [1.0, 1.0, 1.0, 1.0])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MATCH, MISMATCH, GAP_SCORE = 1, -1, -1
GAP = -100

# REFERENCE §3, "Weight on edited" / "Weight on generated" (trainer.py's defaults)
EDITED_WEIGHTS = {"C": 1.0, "I": 1.0, "S": 1.0}
GENERATED_WEIGHTS = {"C": 1.0, "D": -0.1, "S": -0.1}
LABEL_TEXT = {
    "C": "same token in both",
    "I": "token only in the edited text (gap in generated)",
    "D": "token only in the generated text (gap in edited)",
    "S": "substitution (different tokens aligned)",
}


@dataclass(frozen=True)
class Alignment:
    generated: list[int]  # aligned, GAP where the generated text has no token
    edited: list[int]  # aligned, GAP where the edited text has no token
    labels: list[str]  # one of C / I / D / S per aligned position
    generated_weights: list[float]  # one per generated token
    edited_weights: list[float]  # one per edited token
    score: int  # the Needleman–Wunsch score

    def counts(self) -> dict[str, int]:
        return {label: self.labels.count(label) for label in "CIDS"}


def score_matrix(generated: list[int], edited: list[int]) -> np.ndarray:
    """The Needleman–Wunsch matrix, shape ``(len(generated) + 1, len(edited) + 1)``:
    ``H[i, j]`` is the best score of ``generated[:i]`` against ``edited[:j]``.

    One row at a time, vectorised: the diagonal and vertical moves come from the previous row; the
    horizontal moves inside a row (a run of insertions) are a running maximum,
    ``H[i, j] = max_k (T[k] + GAP_SCORE * (j - k))`` = ``cummax(T + k) - j`` with gap −1."""
    n, m = len(generated), len(edited)
    assert GAP_SCORE == -1  # the running-maximum form below is for a gap of −1
    h = np.zeros((n + 1, m + 1), dtype=np.int64)
    h[0, :] = -np.arange(m + 1)
    h[:, 0] = -np.arange(n + 1)
    if n == 0 or m == 0:
        return h
    e = np.asarray(edited, dtype=np.int64)
    idx = np.arange(m + 1)
    for i in range(1, n + 1):
        prev = h[i - 1]
        sub = np.where(e == generated[i - 1], MATCH, MISMATCH)
        t = np.empty(m + 1, dtype=np.int64)
        t[0] = prev[0] + GAP_SCORE
        t[1:] = np.maximum(prev[:-1] + sub, prev[1:] + GAP_SCORE)
        h[i] = np.maximum.accumulate(t + idx) - idx
    return h


def align(generated: list[int], edited: list[int]) -> Alignment:
    """Align two token id sequences and label every aligned position (see the module docstring)."""
    generated, edited = [int(t) for t in generated], [int(t) for t in edited]
    h = score_matrix(generated, edited)
    i, j = len(generated), len(edited)
    al_g: list[int] = []
    al_e: list[int] = []
    labels: list[str] = []
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            same = generated[i - 1] == edited[j - 1]
            if h[i, j] == h[i - 1, j - 1] + (MATCH if same else MISMATCH):
                al_g.append(generated[i - 1])
                al_e.append(edited[j - 1])
                labels.append("C" if same else "S")
                i, j = i - 1, j - 1
                continue
        if i > 0 and h[i, j] == h[i - 1, j] + GAP_SCORE:
            al_g.append(generated[i - 1])
            al_e.append(GAP)
            labels.append("D")
            i -= 1
        else:
            al_g.append(GAP)
            al_e.append(edited[j - 1])
            labels.append("I")
            j -= 1
    al_g.reverse()
    al_e.reverse()
    labels.reverse()
    return Alignment(
        generated=al_g,
        edited=al_e,
        labels=labels,
        generated_weights=[GENERATED_WEIGHTS[label] for label in labels if label in GENERATED_WEIGHTS],
        edited_weights=[EDITED_WEIGHTS[label] for label in labels if label in EDITED_WEIGHTS],
        score=int(h[len(generated), len(edited)]),
    )


# --- named tokenizers --------------------------------------------------------------------------------

DEFAULT_TOKENIZER = "smollm2-135m-instruct"


def tokenizer_errors(name: str) -> str:
    """Why ``name`` does not name a tokenizer ("" when it does). Cheap and torch-free: the web
    process validates export options with it. A name is a packaged model key
    (``jury.backends.registry.PACKAGED_MODELS``) or a local Hugging Face folder with a tokenizer."""
    from pathlib import Path

    from jury.backends.registry import PACKAGED_MODELS

    if not name:
        return "tokenizer is required"
    if name in PACKAGED_MODELS:
        return ""
    path = Path(name).expanduser()
    if path.is_absolute() and ((path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()):
        return ""
    return (f"tokenizer {name!r} is neither a packaged model ({', '.join(sorted(PACKAGED_MODELS))}) nor the "
            "absolute path of a Hugging Face folder with tokenizer.json or tokenizer_config.json")


def load_tokenizer(name: str) -> tuple[Any, dict]:
    """The tokenizer named ``name`` and a description of it for the dataset card.

    A packaged model's tokenizer comes from its converted folder when the jury already converted it
    (fast), else straight from the GGUF in the package (the tokenizer only; no weights are read)."""
    import importlib.metadata
    from pathlib import Path

    from transformers import AutoTokenizer

    from jury.backends import packaged
    from jury.backends.registry import PACKAGED_MODELS

    error = tokenizer_errors(name)
    if error:
        raise ValueError(error)
    if name in PACKAGED_MODELS:
        model = PACKAGED_MODELS[name]
        version = importlib.metadata.version(model.package.replace("_", "-"))
        if packaged.is_converted(name):
            tok = AutoTokenizer.from_pretrained(str(packaged.converted_folder(name)))
        else:
            gguf = packaged.gguf_path(name, packaged.cache_dir())
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        source = f"{model.package.replace('_', '-')}=={version}"
    else:
        folder = Path(name).expanduser().resolve()
        tok = AutoTokenizer.from_pretrained(str(folder))
        source = str(folder)
    return tok, {"name": name, "source": source, "class": type(tok).__name__, "vocab_size": len(tok)}


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """The text's token ids, without special tokens (no BOS/EOS: the trainer adds its own)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
