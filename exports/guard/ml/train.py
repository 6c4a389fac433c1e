"""``main(cfg, examples, ...)``: train one guard with any recipe and write its folder.

- **baseline**: the encoder stays frozen; mean-pooled, L2-normalised embeddings feed scikit-learn
  logistic regressions (class-balanced): one binary unsafe/safe, and one-vs-rest per category on
  the examples whose categories are known. Their coefficients become the two linear heads, so the
  folder has the same layout and inference code as the default recipe.
- **default**: the encoder is fine-tuned end to end with both heads (weighted binary BCE + masked
  multi-label BCE, class weights n_neg / n_pos capped at ``max_pos_weight``), AdamW, linear warm-up
  and decay. Both encoder recipes take the packaged MiniLM or any Hugging Face encoder folder.
- **generative**: a LoRA adapter on a causal LM answering the Llama Guard 3 (or Aegis JSON)
  instruction (:mod:`exports.guard.ml.generative`).

All then fit a temperature on the validation split's binary logits, choose the binary threshold
and one threshold per category for the best validation F1, and write the recipe's weights
(``encoder/`` + ``head.safetensors``, or ``adapter/`` + ``tokenizer/``), ``guard.json`` (whose
``model.kind`` says which: ``modeling.load_guard`` reads it) and ``README.md`` (the model card).
The folder is written into ``out_dir``, which must not exist yet: the caller stages it and moves
it into place.
"""
from __future__ import annotations

import json
import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exports.guard.manifest import FORMAT, MANIFEST_NAME
from exports.guard.ml.calibrate import choose_threshold, fit_temperature
from exports.guard.ml.config import GuardTrainConfig, base_reference
from exports.guard.ml.data import Example, GuardCollator, GuardDataError, data_counts, data_sha256, split_by_item
from exports.guard.ml.evaluate import evaluate_predictions
from exports.guard.ml.losses import guard_loss
from exports.guard.ml.modeling import (
    HEAD_FILE,
    GuardClassifier,
    base_label,
    embed_pairs,
    load_encoder,
    predict_logits,
    resolve_base,
    save_guard,
)

logger = logging.getLogger(__name__)

Progress = Callable[..., None]  # progress(phase=..., step=..., steps_total=..., loss=...)


class GuardCancelled(Exception):
    """``should_stop()`` said the job was cancelled; nothing is written."""


def check_examples(examples: Sequence[Example], codes: Sequence[str]) -> None:
    """Refuse data no guard can learn from, with a message that says why."""
    if not examples:
        raise GuardDataError("No labelled examples: the source is empty.")
    labels = {ex.label for ex in examples}
    if labels != {0, 1}:
        only = "unsafe" if labels == {1} else "safe"
        raise GuardDataError(
            f"All {len(examples)} examples are labelled {only}: a guard needs both safe and unsafe examples."
        )
    known = set(codes)
    for ex in examples:
        bad = [c for c in ex.categories or () if c not in known]
        if bad:
            raise GuardDataError(f"Item {ex.key!r}: category {bad[0]!r} is not in the taxonomy (codes: {', '.join(codes)}).")


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "tokenizers", "safetensors", "peft", "scikit-learn", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = "absent"
    return out


def main(
    cfg: GuardTrainConfig,
    examples: Sequence[Example],
    *,
    codes: Sequence[str],
    taxonomy: dict[str, Any],
    out_dir: Path,
    provenance: dict[str, Any] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    category_names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Train, calibrate, evaluate on validation and write the guard folder; returns the manifest.

    The recipe only fits the model (:func:`_fit_encoder` or ``generative.fit_generative``); the
    split, calibration, thresholds, validation metrics, manifest and model card are shared.
    ``category_names`` (code -> name) are what the generative recipe's prompt lists (default: the
    codes themselves)."""
    started = time.monotonic()
    codes = list(codes)
    report = progress or (lambda **kw: None)
    check_examples(examples, codes)
    train, val = split_by_item(examples, share=cfg.validation_share, seed=cfg.seed)
    if {ex.label for ex in train} != {0, 1}:
        raise GuardDataError(
            f"The training split ({len(train)} examples) lacks safe or unsafe examples; add data or lower validation_share."
        )
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    device = torch.device(cfg.device)
    base_dir = resolve_base(cfg.base)
    fitted: Any
    if cfg.recipe == "generative":
        from exports.guard.ml.generative import fit_generative

        fitted = fit_generative(cfg, base_dir, train, codes=codes, category_names=category_names, report=report,
                                should_stop=should_stop, device=device)
    else:
        fitted = _fit_encoder(cfg, base_dir, train, codes, report, should_stop, device)
    if should_stop is not None and should_stop():
        raise GuardCancelled("cancelled")

    report(phase="calibrating")
    pairs = [(ex.prompt, ex.response) for ex in val]
    logits, cat_logits = fitted.logits(pairs) if val else (np.zeros(0), np.zeros((0, len(codes))))
    y_val = np.array([ex.label for ex in val], dtype=int)
    temperature = fit_temperature(logits, y_val)
    p_val = 1.0 / (1.0 + np.exp(-logits / temperature))
    threshold = choose_threshold(y_val, p_val)
    pc_val = 1.0 / (1.0 + np.exp(-cat_logits))
    cat_thresholds = {}
    known = [i for i, ex in enumerate(val) if ex.categories is not None]
    for k, code in enumerate(codes):
        yk = np.array([1 if code in (val[i].categories or ()) else 0 for i in known], dtype=int)
        cat_thresholds[code] = choose_threshold(yk, pc_val[known, k]) if known else 0.5
    validation = (
        evaluate_predictions(val, p_val, pc_val, codes=codes, threshold=threshold, category_thresholds=cat_thresholds)
        if val and len(set(y_val.tolist())) == 2 else None
    )
    if should_stop is not None and should_stop():
        raise GuardCancelled("cancelled")

    report(phase="writing")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=False)
    fitted.save(out_dir)
    manifest = {
        "format": FORMAT,
        "name": (provenance or {}).get("name", ""),
        "version": (provenance or {}).get("version"),
        "taxonomy": dict(taxonomy),
        "category_codes": codes,
        "threshold": threshold,
        "category_thresholds": cat_thresholds,
        "temperature": temperature,
        "recipe": cfg.recipe,
        "base": base_label(cfg.base),
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "model": fitted.model_meta(),
        "training_data": {
            "sha256": data_sha256(examples),
            "counts": {"all": data_counts(examples), "train": data_counts(train), "validation": data_counts(val)},
            "split": {"by": "item (sha256 of seed and item key)", "validation_share": cfg.validation_share, "seed": cfg.seed},
            "source": (provenance or {}).get("source", {}),
        },
        "metrics": {"validation": validation},
        "training": {"steps": fitted.steps, "seconds": round(time.monotonic() - started, 1), "device": str(device)},
        "libraries": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(model_card(manifest), encoding="utf-8")
    return manifest


@dataclass
class _EncoderFit:
    """The default and baseline recipes' fitted encoder + heads (what ``main`` needs of a recipe:
    ``steps``, ``logits(pairs)``, ``save(out_dir)``, ``model_meta()``)."""

    cfg: GuardTrainConfig
    model: GuardClassifier
    tokenizer: Any
    base_dir: Path
    device: torch.device
    steps: int = 0

    def logits(self, pairs: Sequence[tuple[str, str | None]]) -> tuple[np.ndarray, np.ndarray]:
        self.model.to(self.device)
        return predict_logits(self.model, self.tokenizer, pairs, max_length=self.cfg.max_length, device=self.device)

    def save(self, out_dir: Path) -> None:
        self.model.to("cpu")
        save_guard(self.model, self.tokenizer, out_dir,
                   copy_encoder_from=self.base_dir if self.cfg.recipe == "baseline" else None)

    def model_meta(self) -> dict[str, Any]:
        normalize = self.cfg.recipe == "baseline"
        return {"kind": "encoder", "head": HEAD_FILE, "encoder": "encoder", "pooling": "mean", "normalize": normalize,
                "max_length": self.cfg.max_length, "base": base_reference(self.cfg.base, self.base_dir),
                "input": "prompt [SEP] response (a sentence pair; prompt alone when no response)"}


def _fit_encoder(cfg, base_dir, train, codes, report, should_stop, device) -> _EncoderFit:
    encoder, tokenizer = load_encoder(base_dir)
    model = GuardClassifier(encoder, len(codes), normalize=cfg.recipe == "baseline")
    fit = _EncoderFit(cfg, model, tokenizer, Path(base_dir), device)
    if cfg.recipe == "baseline":
        _fit_baseline(cfg, model, tokenizer, train, codes, report)
    else:
        fit.steps = _fine_tune(cfg, model, tokenizer, train, codes, report, should_stop, device)
    return fit


def warmup_linear_schedule(optim: torch.optim.Optimizer, steps_total: int, warmup_share: float):
    """Linear warm-up over ``warmup_share`` of the steps, then linear decay to 0."""
    warmup = max(1, int(warmup_share * steps_total))
    return torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.0, (steps_total - s) / max(1, steps_total - warmup)))
    )


class TrainingLoop:
    """The optimiser step and the progress report both fine-tuning loops share (encoder and
    generative): a non-finite loss stops the run with a hint, gradients are clipped to norm 1,
    the loss is smoothed for the report, and every ``progress_every`` steps the job reports and
    checks for a cancel."""

    def __init__(self, cfg: GuardTrainConfig, *, params, optim, sched, steps_total: int, report: Progress,
                 should_stop: Callable[[], bool] | None, hint: str = "lower the learning rate"):
        self.cfg, self.params, self.optim, self.sched = cfg, list(params), optim, sched
        self.steps_total, self.report, self.should_stop, self.hint = steps_total, report, should_stop, hint
        self.step = 0
        self.running: float | None = None

    def step_with(self, loss: torch.Tensor) -> bool:
        """Back-propagate ``loss`` and take one step; True when the run has all its steps."""
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"The loss is {value} at step {self.step}; {self.hint}.")
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optim.step()
        self.sched.step()
        self.step += 1
        self.running = value if self.running is None else 0.9 * self.running + 0.1 * value
        if self.step % self.cfg.progress_every == 0 or self.step == self.steps_total:
            self.report(phase="training", step=self.step, steps_total=self.steps_total, loss=self.running)
            if self.should_stop is not None and self.should_stop():
                raise GuardCancelled("cancelled")
        return self.step >= self.steps_total


def _class_weight(y: np.ndarray, cap: float) -> float:
    pos = float(y.sum())
    neg = float(len(y) - pos)
    return float(min(cap, neg / pos)) if pos else 1.0


def _source_weights(train) -> np.ndarray:
    """Per-example weights that give every source (item key before its first ':') the same total
    weight, normalised to mean 1."""
    sources = [ex.key.split(":", 1)[0] if ":" in ex.key else "" for ex in train]
    counts: dict[str, int] = {}
    for src in sources:
        counts[src] = counts.get(src, 0) + 1
    w = np.array([1.0 / counts[src] for src in sources], dtype=np.float64)
    return w * (len(w) / w.sum())


def _freeze_lower(cfg, model) -> None:
    """Freeze the embeddings (and the lowest ``freeze_layers`` transformer layers) of the encoder."""
    if not (cfg.freeze_embeddings or cfg.freeze_layers):
        return
    encoder = model.encoder
    embeddings = getattr(encoder, "embeddings", None)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if embeddings is None or (cfg.freeze_layers and layers is None):
        raise ValueError(f"freeze_embeddings / freeze_layers: the encoder {type(encoder).__name__} has no BERT-like "
                         "embeddings / encoder.layer to freeze.")
    if cfg.freeze_layers > len(layers or ()):
        raise ValueError(f"freeze_layers is {cfg.freeze_layers} but the encoder has {len(layers or ())} layers.")
    frozen = [embeddings, *list(layers or ())[: cfg.freeze_layers]]
    for module in frozen:
        for param in module.parameters():
            param.requires_grad_(False)


class _BatchSampler:
    """Each epoch's batches of indices into ``train``: a seeded shuffle (or, with
    ``balance_sources``, as many draws with replacement as examples, every source equally likely);
    with ``group_by_length``, the draws are cut into windows of 50 batches, sorted by token length
    inside a window and the batches shuffled (as transformers' ``group_by_length``), so a batch
    pads to similar lengths."""

    def __init__(self, cfg, train, tokenizer, gen):
        self.cfg, self.gen, self.n = cfg, gen, len(train)
        self.weights = torch.from_numpy(_source_weights(train)) if cfg.balance_sources else None
        self.lengths = ([len(tokenizer(ex.prompt, ex.response, truncation=True, max_length=cfg.max_length)["input_ids"])
                         for ex in train] if cfg.group_by_length else None)

    def __len__(self) -> int:
        return math.ceil(self.n / self.cfg.batch_size)

    def __iter__(self):
        bs = self.cfg.batch_size
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=self.gen).tolist()
        else:
            order = torch.randperm(self.n, generator=self.gen).tolist()
        if self.lengths is None:
            yield from (order[i:i + bs] for i in range(0, self.n, bs))
            return
        lengths = self.lengths
        batches = []
        window = 50 * bs
        for w in range(0, self.n, window):
            chunk = sorted(order[w:w + window], key=lambda i: -lengths[i])
            batches.extend(chunk[i:i + bs] for i in range(0, len(chunk), bs))
        for j in torch.randperm(len(batches), generator=self.gen).tolist():
            yield batches[j]


def _fit_baseline(cfg, model, tokenizer, train, codes, report) -> None:
    from sklearn.linear_model import LogisticRegression

    report(phase="embedding", step=0, steps_total=1 + len(codes))
    x = embed_pairs(model, tokenizer, [(ex.prompt, ex.response) for ex in train], max_length=cfg.max_length,
                    batch_size=max(cfg.batch_size, 32))
    y = np.array([ex.label for ex in train], dtype=int)
    sw = _source_weights(train) if cfg.balance_sources else np.ones(len(train))
    report(phase="training")
    clf = LogisticRegression(C=cfg.baseline_c, class_weight="balanced", max_iter=2000,
                             random_state=cfg.seed).fit(x, y, sample_weight=sw)
    weight = np.zeros((len(codes), x.shape[1]), dtype=np.float32)
    bias = np.full(len(codes), -10.0, dtype=np.float32)  # a category never seen: probability ~0
    known = [i for i, ex in enumerate(train) if ex.categories is not None]
    for k, code in enumerate(codes):
        yk = np.array([1 if code in (train[i].categories or ()) else 0 for i in known], dtype=int)
        if len(known) and 0 < yk.sum() < len(yk):
            ck = LogisticRegression(C=cfg.baseline_c, class_weight="balanced", max_iter=2000,
                                    random_state=cfg.seed).fit(x[known], yk, sample_weight=sw[known])
            weight[k], bias[k] = ck.coef_[0], ck.intercept_[0]
        report(phase="training", step=1 + k)
    with torch.no_grad():
        model.binary.weight.copy_(torch.from_numpy(clf.coef_.astype(np.float32)))
        model.binary.bias.copy_(torch.from_numpy(clf.intercept_.astype(np.float32)))
        model.categories.weight.copy_(torch.from_numpy(weight))
        model.categories.bias.copy_(torch.from_numpy(bias))


def _fine_tune(cfg, model, tokenizer, train, codes, report, should_stop, device) -> int:
    from torch.utils.data import DataLoader

    y = np.array([ex.label for ex in train], dtype=int)
    pos_weight = torch.tensor(_class_weight(y, cfg.max_pos_weight), device=device)
    known = [ex for ex in train if ex.categories is not None]
    cat_pw = []
    for code in codes:
        yk = np.array([1 if code in (ex.categories or ()) else 0 for ex in known], dtype=int)
        cat_pw.append(_class_weight(yk, cfg.max_pos_weight) if yk.sum() else 1.0)
    cat_pos_weight = torch.tensor(cat_pw, dtype=torch.float32, device=device)
    gen = torch.Generator().manual_seed(cfg.seed)
    # A list is a map-style dataset (DataLoader only needs __getitem__ and __len__); the batch
    # sampler draws each epoch's batches (shuffled, source-balanced and/or grouped by length).
    loader: DataLoader = DataLoader(
        list(train), batch_sampler=_BatchSampler(cfg, train, tokenizer, gen),  # type: ignore[arg-type]
        collate_fn=GuardCollator(tokenizer, codes, cfg.max_length),
    )
    steps_total = cfg.epochs * len(loader)
    if cfg.max_steps:
        steps_total = min(steps_total, cfg.max_steps)
    _freeze_lower(cfg, model)
    model.to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(
        [{"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": cfg.learning_rate},
         {"params": [*model.binary.parameters(), *model.categories.parameters()], "lr": cfg.head_learning_rate}],
        weight_decay=cfg.weight_decay,
    )
    sched = warmup_linear_schedule(optim, steps_total, cfg.warmup_share)
    report(phase="training", step=0, steps_total=steps_total)
    loop = TrainingLoop(cfg, params=trainable, optim=optim, sched=sched, steps_total=steps_total, report=report,
                        should_stop=should_stop)
    for _epoch in range(cfg.epochs):
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            b_logits, c_logits = model(batch["input_ids"], batch["attention_mask"])
            loss, _parts = guard_loss(b_logits, c_logits, batch["labels"], batch["category_targets"],
                                      batch["category_mask"], pos_weight=pos_weight,
                                      category_pos_weight=cat_pos_weight, category_weight=cfg.category_loss_weight)
            if loop.step_with(loss):
                return loop.step
    return loop.step


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _model_lines(model: dict[str, Any]) -> list[str]:
    """The card's "Model" section: what the weights are and which base they need."""
    base = model.get("base") or {}
    lines = ["## Model", ""]
    if model.get("kind") == "generative":
        lines += [
            f"- LoRA adapter (`{model['adapter']}/`, peft) on the causal LM `{base.get('name', '')}`; "
            f"r {model['lora']['r']}, alpha {model['lora']['alpha']}, modules {model['lora']['target_modules']}",
            f"- prompt format **{model['prompt_format']}**"
            + (" in the base's chat template" if model.get("use_chat_template") else "")
            + f"; conversation truncated to {model['max_length']} tokens",
            f"- binary logit: {model['binary_logit']}",
            f"- category probability: {model['category_probability']}",
        ]
    else:
        lines.append(f"- encoder (`{model.get('encoder', 'encoder')}/`) + linear heads (`{model.get('head')}`), "
                     f"mean pooling{', L2-normalised' if model.get('normalize') else ''}; "
                     f"{model.get('max_length')} tokens at most")
    if base.get("path"):
        lines.append(f"- base read from `{base['path']}`; sha256: "
                     + ", ".join(f"{name} `{digest[:16]}`" for name, digest in base.get("sha256", {}).items()))
    return [*lines, ""]


def model_card(manifest: dict[str, Any]) -> str:
    """README.md of the folder: what it is, the data it saw, its validation metrics."""
    tax = manifest["taxonomy"]
    counts = manifest["training_data"]["counts"]
    val = manifest["metrics"]["validation"]
    lines = [
        f"# Guard {manifest.get('name') or ''} v{manifest.get('version') or ''}".rstrip(),
        "",
        f"Taxonomy-tagged safety classifier trained by Tribunal. Recipe **{manifest['recipe']}** on "
        f"`{manifest['base']}`; categories of **{tax.get('name', tax['slug'])} v{tax['version']}** "
        f"({len(manifest['category_codes'])} codes, in head order: {', '.join(manifest['category_codes'])}).",
        "",
        "**Content warning:** trained on safety data that contains offensive or harmful text.",
        "",
        "## Decision",
        "",
        f"- P(unsafe) = sigmoid(logit / T), T = {manifest['temperature']:.4f}; unsafe when P >= {manifest['threshold']:.4f}",
        "- per-category thresholds (chosen for the best validation F1): "
        + ", ".join(f"{c} {t:.3f}" for c, t in manifest["category_thresholds"].items()),
        "",
        *_model_lines(manifest["model"]),
        "## Training data",
        "",
        f"- sha256 `{manifest['training_data']['sha256']}`; seed {manifest['seed']}; split by item",
        *[f"- {name}: {c['examples']} examples from {c['items']} items ({c['unsafe']} unsafe, {c['safe']} safe)"
          for name, c in counts.items()],
        "",
        "## Validation metrics",
        "",
    ]
    if val is None:
        lines.append("_The validation split was empty or had one class only: no metrics, threshold 0.5, T = 1._")
    else:
        b = val["binary"]
        lines += [
            "| precision | recall | F1 | AUROC | PR-AUC | ECE |",
            "|---|---|---|---|---|---|",
            f"| {_fmt(b['precision'])} | {_fmt(b['recall'])} | {_fmt(b['f1'])} | {_fmt(b['auroc'])} | {_fmt(b['pr_auc'])} | {_fmt(b['ece'])} |",
            "",
            "| category | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
            *[f"| {c} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} | {m['support']} |"
              for c, m in val["categories"].items() if m["support"] or m["predicted"]],
        ]
    lines += ["", "## Libraries", "", *[f"- {k} {v}" for k, v in manifest["libraries"].items()], ""]
    return "\n".join(lines)
