"""The generative recipe: a LoRA adapter (``peft``) on a Hugging Face causal LM that answers the
Llama Guard 3 (or Aegis JSON) instruction of :mod:`exports.guard.ml.prompting`.

Training: each example becomes ``prompt ids + answer ids + end-of-text``; the loss is the token
cross-entropy on the answer only (the verdict, the categories and the end; for an unsafe example
whose categories are unknown, the verdict alone), each example weighted by its class weight
(n_safe / n_unsafe for unsafe ones, capped). Sequences are left-padded so every answer ends at
the same position and the vocabulary projection runs on the answer positions only.

Inference (the same ``predict(pairs) -> (P(unsafe) [N], P(category) [N, K])`` as the encoder
guards) reads logits, it does not generate:

- the binary logit is ``logit(first token of "unsafe") - logit(first token of "safe")`` at the
  first answer position; P(unsafe) = sigmoid(logit / T) with the temperature fitted on validation;
- for each category k, the example is scored with the forced answer ``unsafe`` + intro + k's code
  (Aegis: its name): q_k = P(intro, code_k, then a separator or the end | prompt, "unsafe"), i.e.
  the probability that k is the first category listed. Training lists an example's categories in a
  seeded random order, so q_k is not biased toward codes early in the taxonomy. The category
  probability is sigmoid(binary logit) x q_k (uncalibrated, as the encoder's category heads), and a
  threshold per category is chosen on validation like for the other recipes.

Scoring reuses the prompt's KV cache: one forward pass per prompt, then a few tokens per category
(a base whose cache cannot be cropped, e.g. sliding-window layers past their window, is not
supported by this scorer).

Folder: ``adapter/`` (peft ``save_pretrained``: adapter_config.json + adapter_model.safetensors),
``tokenizer/``, ``guard.json`` (``"model": {"kind": "generative", ...}`` with the base model's
path and sha256 sums, the prompt format and the categories' names as rendered), ``README.md``.
The base weights are not copied: the guard names them, and loading finds them by that path (or
re-resolves the packaged SmolLM2).
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exports.guard.ml.config import GuardTrainConfig, base_reference, file_sha256, resolve_base
from exports.guard.ml.data import Example
from exports.guard.ml.prompting import SAFE, UNSAFE, PromptFormat

ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
ADAPTER_WEIGHTS = f"{ADAPTER_DIR}/adapter_model.safetensors"
IGNORE = -100


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """auto: bfloat16 on CUDA when the card supports it, float32 otherwise (CPU training in half
    precision is slow and unstable)."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_causal_lm(folder: Path, *, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    return model, tokenizer


def _end_id(tokenizer) -> int:
    eos = tokenizer.eos_token_id
    if isinstance(eos, list):
        eos = eos[0]
    if eos is None:
        raise ValueError("The base's tokenizer has no end-of-text token; a generative guard needs one.")
    return int(eos)


@dataclass
class Codec:
    """Token ids of prompts, answers and category continuations for one tokenizer and format."""

    tokenizer: Any
    fmt: PromptFormat
    max_length: int  # the conversation's token budget
    use_chat_template: bool = True
    _piece_cache: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.end_id = _end_id(self.tokenizer)
        self.chat = bool(self.use_chat_template and getattr(self.tokenizer, "chat_template", None))
        self.safe_id = self.piece(SAFE)[0]
        self.unsafe_id = self.piece(UNSAFE)[0]
        if self.safe_id == self.unsafe_id:
            raise ValueError("The tokenizer starts 'safe' and 'unsafe' with the same token; the verdict cannot be read.")
        intro = self.piece(self.fmt.category_intro)
        # what may follow a category: the separator, the suffix, or the end of the answer
        self.delimiters = sorted({self.piece(self.fmt.separator)[0],
                                  self.piece(self.fmt.suffix)[0] if self.fmt.suffix else self.end_id})
        self.category_tails = [self.piece(UNSAFE) + intro + self.piece(self.fmt.category_text(code))
                               for code in self.fmt.codes]
        self.category_starts = len(self.piece(UNSAFE))  # q_k scores the tail from here on

    def piece(self, text: str) -> list[int]:
        if text not in self._piece_cache:
            self._piece_cache[text] = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._piece_cache[text]

    def truncate(self, prompt: str, response: str | None) -> tuple[str, str | None]:
        """Cut the longer of prompt and response (in tokens) until both fit in max_length."""
        p = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = self.tokenizer(response, add_special_tokens=False)["input_ids"] if response is not None else []
        if len(p) + len(r) <= self.max_length:
            return prompt, response
        while len(p) + len(r) > self.max_length:
            if len(p) >= len(r):
                p = p[: max(1, len(p) - max(1, len(p) + len(r) - self.max_length))]
            else:
                r = r[: max(0, len(r) - max(1, len(p) + len(r) - self.max_length))]
        decode = self.tokenizer.decode
        return decode(p, skip_special_tokens=True), (None if response is None else decode(r, skip_special_tokens=True))

    def render(self, prompt: str, response: str | None) -> str:
        """The text of the prompt side (instruction, chat wrapping, forced answer prefix)."""
        prompt, response = self.truncate(prompt, response)
        instruction = self.fmt.instruction(prompt, response)
        if self.chat:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": instruction}], tokenize=False,
                                                      add_generation_prompt=True)
        else:
            text = instruction + "\n\n"
        return text + self.fmt.answer_prefix(response)

    def prompt_ids(self, prompt: str, response: str | None) -> list[int]:
        text = self.render(prompt, response)
        # a chat template writes its own begin-of-text token; a plain prompt gets the tokenizer's
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def answer(self, ex: Example, *, seed: int) -> tuple[list[int], list[int]]:
        """(ids, loss mask) of the answer with its end token. The categories are listed in a seeded
        order per example; unknown categories of an unsafe example: loss on the verdict only."""
        cats = list(ex.categories) if ex.categories else []
        random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{ex.key}".encode()).digest()[:8], "big")).shuffle(cats)
        # keep the taxonomy's codes only, in the shuffled order (the data was checked before)
        cats = [c for c in cats if c in self.fmt.codes]
        ids: list[int] = []
        mask: list[int] = []
        for i, piece in enumerate(self.fmt.answer_pieces(ex.label, cats)):
            toks = self.piece(piece)
            ids += toks
            mask += [1 if (i == 0 or ex.categories is not None or not ex.label) else 0] * len(toks)
        ids.append(self.end_id)
        mask.append(1 if (ex.categories is not None or not ex.label) else 0)
        return ids, mask


def left_pad(seqs: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids, attention_mask and position_ids [B, T] of left-padded sequences (positions count
    real tokens only, so a padded sequence sees the positions it would see alone)."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, n - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, n - len(s):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, pos


def tail_logits(model, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, keep: int) -> torch.Tensor:
    """Logits [B, keep, V] of the last ``keep`` positions (the vocabulary projection on those only,
    where the model supports ``logits_to_keep``)."""
    try:
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep, use_cache=False)
    except TypeError:  # an architecture without logits_to_keep
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
    return out.logits[:, -keep:, :]


def collate(codec: Codec, examples: Sequence[Example], *, seed: int, pos_weight: float) -> dict[str, torch.Tensor]:
    """A training batch: left-padded prompt + answer, the answer's target ids and mask aligned at the
    end ([B, A]), and per-example loss weights [B]."""
    seqs, answers, masks = [], [], []
    for ex in examples:
        a_ids, a_mask = codec.answer(ex, seed=seed)
        seqs.append(codec.prompt_ids(ex.prompt, ex.response) + a_ids)
        answers.append(a_ids)
        masks.append(a_mask)
    ids, mask, pos = left_pad(seqs, codec.tokenizer.pad_token_id)
    a = max(len(x) for x in answers)
    targets = torch.full((len(seqs), a), codec.end_id, dtype=torch.long)
    tmask = torch.zeros((len(seqs), a), dtype=torch.float32)
    for i, (x, m) in enumerate(zip(answers, masks)):
        targets[i, a - len(x):] = torch.tensor(x)
        tmask[i, a - len(x):] = torch.tensor(m, dtype=torch.float32)
    weights = torch.tensor([pos_weight if ex.label else 1.0 for ex in examples], dtype=torch.float32)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "targets": targets,
            "target_mask": tmask, "weights": weights}


def answer_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Class-weighted mean over examples of the mean token cross-entropy on the answer tokens."""
    a = batch["targets"].shape[1]
    logits = tail_logits(model, batch["input_ids"], batch["attention_mask"], batch["position_ids"], a + 1)
    logits = logits[:, :-1, :].float()  # position t predicts token t + 1: these predict the answer
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1),
                                           reduction="none").reshape(batch["targets"].shape)  # [B, A]
    m = batch["target_mask"]
    per_example = (ce * m).sum(1) / m.sum(1).clamp(min=1.0)
    w = batch["weights"]
    return (per_example * w).sum() / w.sum()


def _step(model, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache) -> tuple[torch.Tensor, Any]:
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
    return torch.log_softmax(out.logits.float(), dim=-1), out.cache


def score_pairs(model, codec: Codec, pairs: Sequence[tuple[str, str | None]], *, batch_size: int = 16,
                device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Binary logits [N] and category logits [N, K] (see the module docstring), in input order.

    Per batch of prompts (left-padded, similar lengths, under inference_mode): one forward pass over
    the prompts reads the verdict logits at the first answer position and keeps the KV cache; the
    forced ``unsafe`` + intro tokens extend it; then each category's tokens (the same for every row)
    are scored on it and cropped off again, so the K categories cost K short steps, not K prompts."""
    k = len(codec.category_tails)
    prompts = [codec.prompt_ids(p, r) for p, r in pairs]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out_b = np.zeros(len(prompts), dtype=np.float64)
    log_q = np.zeros((len(prompts), k), dtype=np.float64)
    lead = codec.category_tails[0][:codec.category_starts] if k else []  # the tokens of "unsafe"
    intro = codec.category_tails[0][codec.category_starts:len(lead) + len(codec.piece(codec.fmt.category_intro))] if k else []
    forced = lead + intro
    delim = torch.tensor(codec.delimiters, dtype=torch.long)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start:start + batch_size]
            ids, mask, pos = left_pad([prompts[i] for i in idx], codec.tokenizer.pad_token_id)
            ids, mask, pos = ids.to(device), mask.to(device), pos.to(device)
            n = len(idx)
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=bool(k), logits_to_keep=1)
            last = out.logits[:, -1, :].float().cpu()
            out_b[idx] = (last[:, codec.unsafe_id] - last[:, codec.safe_id]).numpy()
            if not k:
                continue
            cache = out.cache
            first = torch.log_softmax(last, dim=-1)  # predicts forced[0]
            # the forced "unsafe" + intro: their log-probs beyond the verdict count in every q_k
            nxt = pos[:, -1:] + 1
            f_ids = torch.tensor([forced] * n, dtype=torch.long, device=ids.device)
            f_mask = torch.cat([mask, torch.ones_like(f_ids)], dim=1)
            f_logp, cache = _step(model, f_ids, f_mask, nxt + torch.arange(len(forced), device=ids.device), cache)
            f_logp = f_logp.cpu()
            base = torch.zeros(n)
            for t in range(len(lead), len(forced)):  # intro tokens, predicted by the position before
                base += f_logp[:, t - 1, forced[t]]
            c_pos0 = nxt + len(forced)
            for j, tail in enumerate(codec.category_tails):
                code = tail[len(forced):]
                c_ids = torch.tensor([code] * n, dtype=torch.long, device=ids.device)
                c_mask = torch.cat([f_mask, torch.ones_like(c_ids)], dim=1)
                c_logp, cache = _step(model, c_ids, c_mask, c_pos0 + torch.arange(len(code), device=ids.device), cache)
                c_logp = c_logp.cpu()
                score = base + f_logp[:, -1, code[0]] if forced else base + first[:, code[0]]
                for t in range(1, len(code)):
                    score = score + c_logp[:, t - 1, code[t]]
                score = score + torch.logsumexp(c_logp[:, -1, delim], dim=1)
                log_q[idx, j] = score.numpy()
                cache.crop(-len(code))  # back to prompt + forced tokens
    if not k:
        return out_b, np.zeros((len(prompts), 0))
    # P(category) = sigmoid(b) * q_k, as a logit
    log_p = -np.logaddexp(0.0, -out_b)[:, None]  # log sigmoid(b)
    log_pq = np.minimum(log_p + log_q, -1e-9)
    cat_logits = log_pq - np.log(-np.expm1(log_pq))
    return out_b, cat_logits


def _targets(cfg: GuardTrainConfig) -> str | list[str]:
    t = cfg.lora_target_modules.strip()
    return t if t == "all-linear" else [m.strip() for m in t.split(",") if m.strip()]


@dataclass
class GenerativeFit:
    """A trained adapter, ready to score the validation split and write its folder."""

    cfg: GuardTrainConfig
    model: Any  # a peft PeftModel
    codec: Codec
    base_dir: Path
    device: torch.device
    steps: int = 0

    kind = "generative"

    def logits(self, pairs: Sequence[tuple[str, str | None]]) -> tuple[np.ndarray, np.ndarray]:
        # scored with the adapter merged into the weights (no per-layer adapter pass), then unmerged
        self.model.merge_adapter()
        try:
            return score_pairs(self.model, self.codec, pairs, batch_size=max(1, self.cfg.batch_size), device=self.device)
        finally:
            self.model.unmerge_adapter()

    def save(self, out_dir: Path) -> None:
        self.model.save_pretrained(str(out_dir / ADAPTER_DIR), safe_serialization=True)
        self.codec.tokenizer.save_pretrained(str(out_dir / TOKENIZER_DIR))

    def model_meta(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "kind": "generative",
            "adapter": ADAPTER_DIR,
            "weights": ADAPTER_WEIGHTS,
            "tokenizer": TOKENIZER_DIR,
            "base": base_reference(cfg.base, self.base_dir),
            "prompt_format": self.codec.fmt.name,
            "categories": [list(c) for c in self.codec.fmt.categories],
            "use_chat_template": self.codec.chat,
            "max_length": cfg.max_length,
            "lora": {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout,
                     "target_modules": cfg.lora_target_modules},
            "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
            "input": f"the {self.codec.fmt.name} instruction over (prompt, response or none)"
                     + (", in the base's chat template" if self.codec.chat else ""),
            "binary_logit": "logit(first token of 'unsafe') - logit(first token of 'safe') at the first answer position",
            "category_probability": "sigmoid(binary logit) x P(the category is listed first | 'unsafe')",
        }


def make_format(cfg: GuardTrainConfig, codes: Sequence[str], category_names: dict[str, str] | None) -> PromptFormat:
    names = category_names or {}
    return PromptFormat(cfg.prompt_format, tuple((c, names.get(c) or c) for c in codes))


def fit_generative(cfg: GuardTrainConfig, base_dir: Path, train: Sequence[Example], *, codes: Sequence[str],
                   category_names: dict[str, str] | None, report: Callable[..., None],
                   should_stop: Callable[[], bool] | None, device: torch.device) -> GenerativeFit:
    """LoRA-tune the causal LM in ``base_dir`` on ``train`` (AdamW on the adapter, linear warm-up
    and decay, gradient clipping at 1.0)."""
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader

    from exports.guard.ml.train import TrainingLoop, _class_weight, warmup_linear_schedule

    report(phase="loading model")
    base, tokenizer = load_causal_lm(base_dir, dtype=resolve_dtype(cfg.dtype, device))
    codec = Codec(tokenizer, make_format(cfg, codes, category_names), cfg.max_length, cfg.use_chat_template)
    if cfg.gradient_checkpointing:
        base.gradient_checkpointing_enable()
        base.enable_input_require_grads()
    lora = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=_targets(cfg))
    model = get_peft_model(base, lora)
    model.to(device)
    y = np.array([ex.label for ex in train], dtype=int)
    pos_weight = _class_weight(y, cfg.max_pos_weight)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader: DataLoader = DataLoader(
        list(train), batch_size=cfg.batch_size, shuffle=True, generator=gen,  # type: ignore[arg-type]
        collate_fn=lambda exs: collate(codec, exs, seed=cfg.seed, pos_weight=pos_weight),
    )
    steps_total = cfg.epochs * len(loader)
    if cfg.max_steps:
        steps_total = min(steps_total, cfg.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.lora_learning_rate, weight_decay=cfg.weight_decay)
    sched = warmup_linear_schedule(optim, steps_total, cfg.warmup_share)
    model.train()
    report(phase="training", step=0, steps_total=steps_total)
    loop = TrainingLoop(cfg, params=params, optim=optim, sched=sched, steps_total=steps_total, report=report,
                        should_stop=should_stop, hint="lower lora_learning_rate")
    fit = GenerativeFit(cfg, model, codec, Path(base_dir), device)
    for _epoch in range(cfg.epochs):
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            done = loop.step_with(answer_loss(model, batch))
            fit.steps = loop.step
            if done:
                return fit
    return fit
    return fit


class LoadedGenerativeGuard:
    """A generative guard folder loaded for inference (the base + its adapter): ``predict`` gives
    calibrated P(unsafe) and per-category probabilities in the manifest's head order."""

    def __init__(self, folder: str | Path, *, device: str = "cpu", manifest=None):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from exports.guard.manifest import GuardManifestError, read_manifest

        self.manifest = manifest or read_manifest(folder)
        self.folder = Path(folder)
        meta = self.manifest.data["model"]
        base_dir = self._base_dir(meta.get("base") or {})
        self.device = torch.device(device)
        tokenizer = AutoTokenizer.from_pretrained(str(self.folder / meta.get("tokenizer", TOKENIZER_DIR)))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        categories = tuple((str(c), str(n)) for c, n in meta.get("categories") or [(c, c) for c in self.manifest.codes])
        if [c for c, _ in categories] != self.manifest.codes:
            raise GuardManifestError(f"{self.folder}: the prompt's categories do not match guard.json's category codes.")
        self.codec = Codec(tokenizer, PromptFormat(meta.get("prompt_format", "llamaguard3"), categories),
                           int(meta.get("max_length", 256)), bool(meta.get("use_chat_template", True)))
        base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=resolve_dtype("auto", self.device))
        adapted = PeftModel.from_pretrained(base, str(self.folder / meta.get("adapter", ADAPTER_DIR)))
        # inference only: fold the adapter into the weights (same outputs, no per-layer adapter pass)
        self.model = adapted.merge_and_unload()
        self.model.to(self.device).eval()
        self.max_length = self.codec.max_length

    def _base_dir(self, ref: dict[str, Any]) -> Path:
        from exports.guard.manifest import GuardManifestError

        path = Path(ref.get("path") or "")
        if not (path / "config.json").is_file() and ref.get("packaged"):
            name = str(ref.get("name", "")).split("==")[0]
            path = resolve_base(name)
        if not (path / "config.json").is_file():
            raise GuardManifestError(f"{self.folder}: its base model folder {str(path)!r} is missing; "
                                     "put the base back there or retrain.")
        want = (ref.get("sha256") or {}).get("config.json")
        if want and file_sha256(path / "config.json") != want:
            raise GuardManifestError(f"{self.folder}: the base model in {path} is not the one it was trained on "
                                     "(config.json sha256 differs).")
        return path

    def predict(self, pairs: Sequence[tuple[str, str | None]], *, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """(P(unsafe) [N], P(category) [N, K]) for (prompt, response or None) pairs."""
        logits, cat_logits = score_pairs(self.model, self.codec, pairs, batch_size=batch_size, device=self.device)
        p = 1.0 / (1.0 + np.exp(-logits / self.manifest.temperature))
        pc = 1.0 / (1.0 + np.exp(-cat_logits))
        return p, pc
