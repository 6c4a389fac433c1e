"""A fake model: deterministic, instant, no weights. For tests and DEBUG only (the registry refuses
it elsewhere). Registered as the "fake" backend kind.

It scores every label from a hash of (model name, context, label), so the same spec and inputs
always give the same verdicts, different targets get different ones, and nothing is loaded. Text
units are whitespace-separated words, so the truncation policy works as with a real tokenizer.

``spec["model"]`` can steer it (for run-lifecycle tests):

- ``"prefer:<label>"`` gives that label (e.g. ``unsafe`` or ``A``) the highest score everywhere;
- ``"fail"`` raises on every scoring call (a juror that cannot judge).

As an editor (``generate_texts``) it reads the text under "Response:" in the context and answers
in the reference format (jury/edits/prompts.py): by default it changes the first word and adds
one ("edit"); ``"same"`` returns the text unchanged, ``"rewrite"`` replaces every word,
``"chatter"`` ignores the format, ``"empty"`` answers nothing and ``"fail"`` raises.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from jury.backends.base import Backend


class FakeBackendError(RuntimeError):
    pass


class FakeBackend(Backend):
    def __init__(self, spec: dict[str, Any]):
        super().__init__(spec)
        self.model_name = str(spec.get("model") or "fake")
        self.calls = 0

    def encode(self, text: str) -> list:
        return text.split(" ")

    def decode(self, units: list) -> str:
        return " ".join(units)

    def score_contexts(self, items: list[tuple[str, dict[str, str]]]) -> list[dict[str, float]]:
        self.calls += 1
        if self.model_name == "fail":
            raise FakeBackendError("the fake model was asked to fail")
        prefer = self.model_name.partition("prefer:")[2]
        results = []
        for context, labels in items:
            scores = {}
            for key, text in labels.items():
                digest = hashlib.sha256(f"{self.model_name}\0{context}\0{text}".encode()).digest()
                # a log-probability in (-6, -0.05]: spread enough for clear winners and close calls
                scores[key] = -0.05 - 5.95 * int.from_bytes(digest[:4], "big") / 2**32
                if prefer and key == prefer:
                    scores[key] = -0.01
            results.append(scores)
        return results

    def generate_texts(
        self, contexts: list[str], *, max_new_tokens: int = 256, temperature: float = 0.0, seed: int | None = None,
    ) -> list[str]:
        self.calls += 1
        mode = self.model_name if self.model_name in ("same", "rewrite", "chatter", "empty", "fail") else "edit"
        if mode == "fail":
            raise FakeBackendError("the fake model was asked to fail")
        out = []
        for context in contexts:
            found = re.search(r"\nResponse:\n(.*?)\n\n", context, re.DOTALL)
            source = found.group(1) if found else ""
            words = source.split()
            if mode == "same":
                text = source
            elif mode == "rewrite":
                text = " ".join(f"w{n}" for n in range(len(words) + 3))
            elif mode == "empty":
                out.append("")
                continue
            else:
                text = " ".join(["Indeed,", *words[1:], "(checked)"]) if words else "Indeed."
            if mode == "chatter":
                out.append(f"Sure, here is the edited response:\n{text}")
            else:
                out.append(f"Numbered List of edits made: {{Omit {words[0] if words else ''}}} ||| {{Add checked}}\n"
                           f"Edited Response: {text}")
        return out
