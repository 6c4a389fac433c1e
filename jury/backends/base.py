"""What every backend shares: the request/result types, prompt rendering and the truncation policy.

Truncation policy (recorded on every verdict it touches):
    The context may hold at most ``max_length`` tokens. The budget for the untrusted texts is
    ``max_length`` minus the rendered template without them, minus the longest label, minus a
    margin of 8. If the texts do not fit, the prompt gets at most a third of the budget (more if
    the responses leave room) and each response an equal share of the rest (a response shorter than
    its share gives the remainder to the others). Every cut text keeps its END: for a response the
    end is where a reply that opens helpfully turns harmful, and for a prompt the end is the
    user's actual request. The dropped start is replaced by "[...] ". The verdict's ``truncation``
    records, per text, how many tokens were dropped.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jury.prompts import Template

ELLIPSIS = "[...] "
MARGIN = 8


@dataclass
class JudgeRequest:
    """One context to score, with the label sequences to compare."""

    template: Template
    fields: dict[str, str] = field(default_factory=dict)  # fixed parts (categories, principle, subject)
    texts: dict[str, str] = field(default_factory=dict)  # untrusted, truncatable: prompt, response(_a/_b)
    labels: dict[str, str] = field(default_factory=dict)  # label key -> text; defaults to template.labels

    def label_texts(self) -> dict[str, str]:
        return self.labels or dict(self.template.labels)


@dataclass
class JudgeResult:
    logprobs: dict[str, float]  # label key -> summed log-probability of the whole label sequence
    truncation: dict[str, int] = field(default_factory=dict)  # text name -> tokens dropped

    @property
    def probs(self) -> dict[str, float]:
        """Probabilities normalised over the label set (a softmax of the sequence log-probs)."""
        import math

        top = max(self.logprobs.values())
        exps = {k: math.exp(v - top) for k, v in self.logprobs.items()}
        total = sum(exps.values())
        return {k: v / total for k, v in exps.items()}


def fill(template: Template, fields: dict[str, str], texts: dict[str, str]) -> str:
    values = dict(fields)
    values.update(texts)
    if template.task in ("safety", "categories"):
        body = f'User: "{texts.get("prompt", "")}"'
        if "response" in texts:
            body += f'\n\nAssistant: "{texts["response"]}"'
        values["body"] = body
        values.setdefault("subject", "conversation" if "response" in texts else "user prompt")
    return template.user.format(**values)


def allocate(lengths: dict[str, int], budget: int) -> dict[str, int]:
    """How many tokens each text may keep (see the module docstring).

    >>> allocate({"prompt": 10, "response": 10}, 100)
    {'prompt': 10, 'response': 10}
    >>> allocate({"prompt": 90, "response": 90}, 90)
    {'prompt': 30, 'response': 60}
    >>> allocate({"prompt": 5, "response_a": 100, "response_b": 10}, 60)
    {'prompt': 5, 'response_a': 45, 'response_b': 10}
    """
    budget = max(budget, 0)
    if sum(lengths.values()) <= budget:
        return dict(lengths)
    keep: dict[str, int] = {}
    responses = [k for k in lengths if k != "prompt"]
    resp_total = sum(lengths[k] for k in responses)
    if "prompt" in lengths:
        keep["prompt"] = min(lengths["prompt"], max(budget // 3, budget - resp_total))
    left = budget - keep.get("prompt", 0)
    pending = sorted(responses, key=lambda k: lengths[k])
    while pending:
        share = left // len(pending)
        name = pending.pop(0)
        keep[name] = min(lengths[name], share)
        left -= keep[name]
    return {k: keep[k] for k in lengths}


class Backend:
    """A juror's model. Subclasses implement ``encode``/``decode`` (the unit the budget counts) and
    ``score_contexts``."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.max_length = int(spec.get("max_length") or 1024)
        self.batch_size = int(spec.get("batch_size") or 8)
        self.load_seconds = 0.0

    # --- text units ---
    def encode(self, text: str) -> list:
        raise NotImplementedError

    def decode(self, units: list) -> str:
        raise NotImplementedError

    # --- rendering ---
    def uses_chat(self) -> bool:
        return False

    def frame(self, template: Template, user_text: str) -> str:
        """The whole context in front of the label (chat template, or plain text)."""
        return f"{template.system}\n\n{user_text}\nAnswer:"

    def label_prefix(self) -> str:
        return "" if self.uses_chat() else " "

    def render(self, request: JudgeRequest) -> tuple[str, dict[str, str], dict[str, int]]:
        """(context text, label key -> continuation text, truncation record)."""
        labels = {k: self.label_prefix() + v for k, v in request.label_texts().items()}
        empty = self.frame(request.template, fill(request.template, request.fields, dict.fromkeys(request.texts, "")))
        overhead = len(self.encode(empty)) + max(len(self.encode(v)) for v in labels.values()) + MARGIN
        encoded = {k: self.encode(v) for k, v in request.texts.items()}
        budget = self.max_length - overhead - len(self.encode(ELLIPSIS)) * len(encoded)
        keep = allocate({k: len(v) for k, v in encoded.items()}, budget)
        texts: dict[str, str] = {}
        truncation: dict[str, int] = {}
        for name, units in encoded.items():
            if keep[name] < len(units):
                truncation[name] = len(units) - keep[name]
                texts[name] = ELLIPSIS + self.decode(units[len(units) - keep[name]:]) if keep[name] else ELLIPSIS
            else:
                texts[name] = request.texts[name]
        context = self.frame(request.template, fill(request.template, request.fields, texts))
        return context, labels, truncation

    # --- scoring ---
    def score(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        rendered = [self.render(r) for r in requests]
        logprobs = self.score_contexts([(c, labels) for c, labels, _ in rendered])
        return [JudgeResult(logprobs=lp, truncation=tr) for lp, (_, _, tr) in zip(logprobs, rendered)]

    def score_contexts(self, items: list[tuple[str, dict[str, str]]]) -> list[dict[str, float]]:
        raise NotImplementedError

    def generate(self, context: str, max_new_tokens: int = 8) -> str:
        """Free-text generation (used only by the bench's generate-then-parse baseline)."""
        raise NotImplementedError

    # --- free generation (synthetic editors, jury/edits) ---
    def frame_user(self, user_text: str) -> str:
        """One user turn framed for generation: the chat template where the model has one."""
        return user_text

    def generate_texts(
        self, contexts: list[str], *, max_new_tokens: int = 256, temperature: float = 0.0, seed: int | None = None,
    ) -> list[str]:
        """The continuation of each context (framed by ``frame_user``), ``batch_size`` at a time.
        Greedy at temperature 0; ``seed`` makes sampling repeatable."""
        raise NotImplementedError(f"The {self.spec.get('backend')!r} backend cannot generate text.")


# One backend per juror spec per process: a worker loads each model once and keeps it.
_CACHE: dict[str, Backend] = {}
_LOCK = threading.Lock()


def _spec_key(spec: dict[str, Any]) -> str:
    import json

    return json.dumps({k: spec.get(k) for k in sorted(spec) if k != "name"}, sort_keys=True, default=str)


def get_backend(spec: dict[str, Any]) -> Backend:
    key = _spec_key(spec)
    with _LOCK:
        backend = _CACHE.get(key)
        if backend is None:
            backend = _build(spec)
            _CACHE[key] = backend
        return backend


def clear_backends() -> None:
    with _LOCK:
        _CACHE.clear()


def _build(spec: dict[str, Any]) -> Backend:
    from jury.backends.registry import build_backend  # the kind's factory, imported on first use

    return build_backend(spec)


BackendFactory = Callable[[dict[str, Any]], Backend]
