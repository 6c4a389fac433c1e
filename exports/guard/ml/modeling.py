"""The guard network: a Hugging Face encoder, mean pooling, a binary head and a category head.

Folder layout written by :func:`save_guard` (read back by :class:`LoadedGuard`; :func:`load_guard`
picks the right loader for any recipe's folder)::

    encoder/            config.json, model.safetensors, tokenizer files (the encoder, self-contained)
    head.safetensors    binary.weight [1, H], binary.bias [1], categories.weight [K, H], categories.bias [K]
    guard.json          the manifest (exports.guard.manifest)
    README.md           the model card
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from exports.guard.ml.config import base_label, resolve_base  # noqa: F401 (re-exported)

HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"


class GuardClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, n_categories: int, *, normalize: bool = False):
        super().__init__()
        # A transformers model: typed loosely, as nn.Module's attribute lookup would type its
        # config and save_pretrained as tensors.
        self.encoder: Any = encoder
        config: Any = encoder.config
        hidden = int(config.hidden_size)
        self.normalize = normalize
        self.binary = nn.Linear(hidden, 1)
        self.categories = nn.Linear(hidden, n_categories)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, T, H]
        mask = attention_mask.unsqueeze(-1).to(out.dtype)  # [B, T, 1]
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # [B, H] mean over real tokens
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.embed(input_ids, attention_mask)
        return self.binary(pooled).squeeze(-1), self.categories(pooled)  # [B], [B, K]


def load_encoder(folder: Path):
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder))


def save_guard(model: GuardClassifier, tokenizer, folder: Path, *, copy_encoder_from: Path | None = None) -> None:
    """Write encoder/ and head.safetensors. ``copy_encoder_from``: the encoder was not trained
    (baseline), so its files are copied as they are instead of re-serialised."""
    from safetensors.torch import save_file

    enc_dir = folder / ENCODER_DIR
    if copy_encoder_from is not None:
        enc_dir.mkdir(parents=True)
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "vocab.txt"):
            if (copy_encoder_from / name).is_file():
                shutil.copy2(copy_encoder_from / name, enc_dir / name)
    else:
        model.encoder.save_pretrained(str(enc_dir), safe_serialization=True)
        tokenizer.save_pretrained(str(enc_dir))
    head = {
        "binary.weight": model.binary.weight.detach().cpu().contiguous(),
        "binary.bias": model.binary.bias.detach().cpu().contiguous(),
        "categories.weight": model.categories.weight.detach().cpu().contiguous(),
        "categories.bias": model.categories.bias.detach().cpu().contiguous(),
    }
    save_file(head, str(folder / HEAD_FILE))


def load_guard(folder: str | Path, *, device: str = "cpu"):
    """The guard in ``folder`` loaded for inference, whichever its recipe: a :class:`LoadedGuard`
    (encoder + heads; ``model.kind`` "encoder" or absent) or a ``LoadedGenerativeGuard``. Both
    have ``manifest`` and ``predict(pairs, batch_size=...) -> (P(unsafe) [N], P(category) [N, K])``."""
    from exports.guard.manifest import read_manifest

    manifest = read_manifest(folder)
    if manifest.data["model"].get("kind", "encoder") == "generative":
        from exports.guard.ml.generative import LoadedGenerativeGuard

        return LoadedGenerativeGuard(folder, device=device, manifest=manifest)
    return LoadedGuard(folder, device=device)


class LoadedGuard:
    """A guard folder loaded for inference: ``predict`` gives calibrated P(unsafe) and per-category
    probabilities in the manifest's head order."""

    def __init__(self, folder: str | Path, *, device: str = "cpu"):
        from safetensors.torch import load_file

        from exports.guard.manifest import read_manifest

        self.manifest = read_manifest(folder)
        self.folder = Path(folder)
        encoder, self.tokenizer = load_encoder(self.folder / ENCODER_DIR)
        model_meta = self.manifest.data["model"]
        self.model = GuardClassifier(encoder, len(self.manifest.codes), normalize=bool(model_meta.get("normalize")))
        head = load_file(str(self.folder / model_meta.get("head", HEAD_FILE)))
        expected = {"binary.weight", "binary.bias", "categories.weight", "categories.bias"}
        if set(head) != expected or head["categories.weight"].shape[0] != len(self.manifest.codes):
            from exports.guard.manifest import GuardManifestError

            raise GuardManifestError(f"{self.folder}: the head weights do not match guard.json's {len(self.manifest.codes)} categories.")
        self.model.binary.load_state_dict({"weight": head["binary.weight"], "bias": head["binary.bias"]})
        self.model.categories.load_state_dict({"weight": head["categories.weight"], "bias": head["categories.bias"]})
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.max_length = int(model_meta.get("max_length", 256))

    def predict(self, pairs: Sequence[tuple[str, str | None]], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(P(unsafe) [N], P(category) [N, K]) for (prompt, response or None) pairs."""
        logits, cat_logits = predict_logits(self.model, self.tokenizer, pairs, max_length=self.max_length,
                                            batch_size=batch_size, device=self.device)
        p = 1.0 / (1.0 + np.exp(-logits / self.manifest.temperature))
        pc = 1.0 / (1.0 + np.exp(-cat_logits))
        return p, pc


def length_sorted_batches(tokenizer, pairs: Sequence[tuple[str, str | None]], *, max_length: int, batch_size: int,
                          device: torch.device | str = "cpu") -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """(input positions, input_ids, attention_mask) batches of (prompt, response or None) sentence
    pairs, truncated longest first, grouped by similar length (sorted) so little is padding; the
    positions put each batch's outputs back in input order."""
    enc = [tokenizer(p, r, truncation=True, max_length=max_length) for p, r in pairs]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]["input_ids"]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer.pad([{"input_ids": enc[i]["input_ids"], "attention_mask": enc[i]["attention_mask"]} for i in idx],
                              return_tensors="pt")
        yield idx, batch["input_ids"].to(device), batch["attention_mask"].to(device)


def predict_logits(model: GuardClassifier, tokenizer, pairs: Sequence[tuple[str, str | None]], *, max_length: int,
                   batch_size: int = 64, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Raw binary logits [N] and category logits [N, K], batched by similar length (sorted), under
    inference_mode; returned in the input order."""
    out_b = np.zeros(len(pairs), dtype=np.float64)
    out_c = np.zeros((len(pairs), model.categories.out_features), dtype=np.float64)
    model.eval()
    with torch.inference_mode():
        for idx, input_ids, attention_mask in length_sorted_batches(tokenizer, pairs, max_length=max_length,
                                                                    batch_size=batch_size, device=device):
            b, c = model(input_ids, attention_mask)
            out_b[idx] = b.float().cpu().numpy()
            out_c[idx] = c.float().cpu().numpy()
    return out_b, out_c


def embed_pairs(model: GuardClassifier, tokenizer, pairs: Sequence[tuple[str, str | None]], *, max_length: int,
                batch_size: int = 64, device: torch.device | str = "cpu") -> np.ndarray:
    """Pooled embeddings [N, H] (the baseline's features), length-sorted batches, input order."""
    out = np.zeros((len(pairs), model.binary.in_features), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for idx, input_ids, attention_mask in length_sorted_batches(tokenizer, pairs, max_length=max_length,
                                                                    batch_size=batch_size, device=device):
            out[idx] = model.embed(input_ids, attention_mask).float().cpu().numpy()
    return out
