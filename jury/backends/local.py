"""Local models through transformers: any Hugging Face folder, or a packaged GGUF model converted
once into MODEL_CACHE_DIR. Worker-only: imports torch and transformers.

Device: the spec's ``device`` or ``TRIBUNAL_DEVICE`` (auto | cpu | cuda | cuda:N). dtype: the spec's
``dtype``; "auto" (the default) is half precision on CUDA (bfloat16 where the card supports it, else
float16) and float32 on CPU. Registered twice (jury/backends/registry.py): "transformers" (a folder)
and "packaged" (a PyPI GGUF, converted first by its ``prepare`` hook).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from jury import scoring
from jury.backends.base import Backend
from jury.prompts import Template

log = logging.getLogger(__name__)


def resolve_device(requested: str | None) -> torch.device:
    from django.conf import settings

    value = (requested or getattr(settings, "TRIBUNAL_DEVICE", "auto") or "auto").strip().lower()
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"TRIBUNAL_DEVICE={value} but CUDA is not available on this worker.")
    return torch.device(value)


DTYPES = ("auto", "float32", "float16", "bfloat16")


def dtype_for(device: torch.device, requested: str | None = None) -> torch.dtype:
    """The spec's dtype, or for "auto": half precision on CUDA (bfloat16 where supported), float32 on CPU."""
    if requested and requested != "auto":
        if requested not in DTYPES:
            raise ValueError(f"Unknown dtype {requested!r}; choose one of {DTYPES}.")
        return getattr(torch, requested)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def model_folder(spec: dict[str, Any]) -> Path:
    """The folder to load: the kind's ``prepare`` hook makes it (a packaged model is converted once
    into MODEL_CACHE_DIR); a kind without one names the folder in ``model``."""
    from jury.backends.registry import prepare_backend

    prepared = prepare_backend(spec)
    folder = Path(prepared or spec["model"]).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"Model folder {folder} does not exist on this worker.")
    return folder


class LocalBackend(Backend):
    def __init__(self, spec: dict[str, Any]):
        super().__init__(spec)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        self.device = resolve_device(spec.get("device"))  # first: a wrong device fails before any loading
        folder = model_folder(spec)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype_for(self.device, spec.get("dtype")))
        # transformers decorates PreTrainedModel.to with functools.wraps(torch.nn.Module.to), which
        # mypy reads as the unbound function (first argument: the model).
        self.model.to(self.device).eval()  # type: ignore[arg-type]
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self._chat = bool(spec.get("use_chat_template", True) and getattr(self.tokenizer, "chat_template", None))
        self.load_seconds = time.perf_counter() - started
        log.info("loaded juror model %s on %s in %.2fs", folder, self.device, self.load_seconds)

    def encode(self, text: str) -> list:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, units: list) -> str:
        text = self.tokenizer.decode(units, skip_special_tokens=True)
        assert isinstance(text, str)  # one sequence of ids decodes to one string
        return text

    def uses_chat(self) -> bool:
        return self._chat

    def frame(self, template: Template, user_text: str) -> str:
        if not self._chat:
            return super().frame(template, user_text)
        messages = [{"role": "system", "content": template.system}, {"role": "user", "content": user_text}]
        framed = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert isinstance(framed, str)  # tokenize=False: the rendered text of one conversation
        return framed

    def context_ids(self, context: str) -> list[int]:
        # A chat-rendered context already carries its special tokens; a plain one gets BOS etc.
        return self.tokenizer.encode(context, add_special_tokens=not self._chat)

    def score_contexts(self, items: list[tuple[str, dict[str, str]]]) -> list[dict[str, float]]:
        results: list[dict[str, float]] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            contexts = [self.context_ids(c)[-self.max_length:] for c, _ in batch]
            keys = [list(labels) for _, labels in batch]
            label_ids = [[self.encode(labels[k]) for k in ks] for (_, labels), ks in zip(batch, keys)]
            for labs in label_ids:
                if any(len(lab) == 0 for lab in labs):
                    raise ValueError("A label encodes to no tokens.")
            scores = scoring.score_batch(self.model, contexts, label_ids, pad_id=self.pad_id)
            results.extend(dict(zip(ks, row)) for ks, row in zip(keys, scores))
        return results

    def generate(self, context: str, max_new_tokens: int = 8) -> str:
        ids = self.context_ids(context)[-self.max_length:]
        out = scoring.generate(self.model, ids, pad_id=self.pad_id, max_new_tokens=max_new_tokens)
        return self.decode(out)


    def frame_user(self, user_text: str) -> str:
        if not self._chat:
            return user_text
        framed = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_text}], add_generation_prompt=True, tokenize=False
        )
        assert isinstance(framed, str)
        return framed

    @torch.inference_mode()
    def generate_texts(
        self, contexts: list[str], *, max_new_tokens: int = 256, temperature: float = 0.0, seed: int | None = None,
    ) -> list[str]:
        """Batched generation: contexts padded on the LEFT with an attention mask, so every row's
        continuation starts at the same column. A context longer than ``max_length`` minus the new
        tokens keeps its end."""
        keep = max(16, self.max_length - max_new_tokens)
        results: list[str] = []
        for start in range(0, len(contexts), self.batch_size):
            rows = [self.context_ids(c)[-keep:] for c in contexts[start:start + self.batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rows], device=self.device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
            if seed is not None:
                torch.manual_seed(seed + start)
            sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, pad_token_id=self.pad_id,
                **sampling,
            )
            results.extend(self.decode(row[width:].tolist()) for row in out)
        return results


def peak_memory_bytes() -> int:
    """Peak resident memory of this process (Linux ru_maxrss is KiB) or of the CUDA device."""
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


__all__ = ["LocalBackend", "resolve_device", "dtype_for", "peak_memory_bytes"]
