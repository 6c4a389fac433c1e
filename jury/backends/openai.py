"""An OpenAI-compatible HTTP endpoint as a juror (vLLM, TGI, llama.cpp server, the OpenAI legacy API).

Protocol: the legacy ``POST {endpoint}/completions`` with ``echo: true, logprobs: 1, max_tokens: 1``
and a list of prompts, one per (context, label): ``context + label``. The server returns the
log-probability of every prompt token; the label's score is the sum over the tokens that lie in
the label's characters (found with ``text_offset``), so labels of several tokens are scored as
whole sequences, exactly as the local backend does. Chat-completions ``top_logprobs`` cannot score
a label beyond its first token, which is why we use completions. Servers without echo+logprobs
(Ollama) cannot serve as jurors this way; the error says so.

Contexts are rendered as plain text (no chat template: the server's tokenizer is not here), and
the truncation budget counts characters: ``max_length`` tokens x 4 characters.

Transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried ``max_retries``
times with exponential backoff; anything else fails at once with the server's message.
Stdlib only (urllib): safe to import in the web process.
"""
from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from typing import Any

from jury.backends.base import Backend
from jury.backends.registry import key_env_error

CHARS_PER_TOKEN = 4


# How much of an endpoint's error body a run shows (it is the endpoint's text, not ours).
ECHO_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class EndpointError(RuntimeError):
    pass


class OpenAIBackend(Backend):
    def __init__(self, spec: dict[str, Any]):
        super().__init__(spec)
        self.endpoint = (spec.get("endpoint") or "").rstrip("/")
        if not self.endpoint:
            raise ValueError("An openai juror needs an endpoint URL.")
        self.model_name = spec["model"]
        self.timeout = float(spec.get("timeout_s") or 60)
        max_retries = spec.get("max_retries")
        self.retries = int(max_retries) if max_retries is not None else 3
        key_env = spec.get("api_key_env") or ""
        if key_env_error(key_env):  # a spec stored before the rule, or edited in the database
            raise ValueError(key_env_error(key_env))
        self.api_key = os.environ.get(key_env, "") if key_env else ""
        self.max_length = int(spec.get("max_length") or 1024) * CHARS_PER_TOKEN
        self.backoff = float(spec.get("backoff_s", 0.5))

    def encode(self, text: str) -> list:
        return list(text)

    def decode(self, units: list) -> str:
        return "".join(units)

    def _post(self, path: str, payload: dict) -> dict:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.endpoint + path, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as exc:
                detail = self._echo(exc.read(4096))
                if exc.code == 429 or exc.code >= 500:
                    last = EndpointError(f"{self.endpoint}{path}: HTTP {exc.code}: {detail}")
                else:
                    raise EndpointError(f"{self.endpoint}{path}: HTTP {exc.code}: {detail}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = EndpointError(f"{self.endpoint}{path}: {exc}")
            if attempt < self.retries:
                time.sleep(self.backoff * (2 ** attempt))
        raise EndpointError(f"gave up after {self.retries + 1} tries: {last}")

    def _echo(self, body: bytes) -> str:
        """What of an endpoint's error body is shown in the run: printable text only, the API key
        masked should the endpoint repeat it, at most ``ECHO_CHARS`` characters."""
        text = body.decode(errors="replace")
        if self.api_key:
            text = text.replace(self.api_key, "[key]")
        text = _CONTROL.sub(" ", text).strip()
        return text[:ECHO_CHARS] + ("…" if len(text) > ECHO_CHARS else "")

    def score_contexts(self, items: list[tuple[str, dict[str, str]]]) -> list[dict[str, float]]:
        flat: list[tuple[int, str, str, str]] = []  # (item index, label key, context, label text)
        for i, (context, labels) in enumerate(items):
            for key, text in labels.items():
                flat.append((i, key, context, text))
        results: list[dict[str, float]] = [{} for _ in items]
        step = max(1, self.batch_size) * max(1, max(len(labels) for _, labels in items))
        for start in range(0, len(flat), step):
            group = flat[start:start + step]
            data = self._post(
                "/completions",
                {
                    "model": self.model_name,
                    "prompt": [context + text for _, _, context, text in group],
                    "max_tokens": 1,
                    "temperature": 0,
                    "echo": True,
                    "logprobs": 1,
                },
            )
            choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
            if len(choices) != len(group):
                raise EndpointError(f"expected {len(group)} choices, got {len(choices)}")
            for choice, (i, key, context, text) in zip(choices, group):
                results[i][key] = _label_logprob(choice, len(context), len(context) + len(text))
        return results


    def generate_texts(
        self, contexts: list[str], *, max_new_tokens: int = 256, temperature: float = 0.0, seed: int | None = None,
    ) -> list[str]:
        """Legacy ``/completions`` with a list of prompts, ``batch_size`` per request (the server
        batches them); ``seed`` is passed on (vLLM and llama.cpp honour it)."""
        results: list[str] = []
        step = max(1, self.batch_size)
        for start in range(0, len(contexts), step):
            group = contexts[start:start + step]
            payload: dict[str, Any] = {
                "model": self.model_name, "prompt": group, "max_tokens": max_new_tokens, "temperature": temperature,
            }
            if seed is not None:
                payload["seed"] = seed
            data = self._post("/completions", payload)
            choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
            if len(choices) != len(group):
                raise EndpointError(f"expected {len(group)} choices, got {len(choices)}")
            results.extend(str(c.get("text") or "") for c in choices)
        return results


def _label_logprob(choice: dict, start: int, end: int) -> float:
    lp = choice.get("logprobs") or {}
    tokens, logprobs, offsets = lp.get("tokens"), lp.get("token_logprobs"), lp.get("text_offset")
    if not tokens or logprobs is None or offsets is None:
        raise EndpointError("the endpoint returned no prompt logprobs: it must support echo=true with logprobs")
    total, seen = 0.0, False
    for token, value, offset in zip(tokens, logprobs, offsets):
        # Tokens that overlap the label's characters; the generated token (offset >= end) is ignored.
        if offset < end and offset + len(token) > start:
            if value is None:
                raise EndpointError("the endpoint returned a null logprob inside the label")
            total += float(value)
            seen = True
    if not seen:
        raise EndpointError("no token of the label was found in the echoed prompt")
    return total
