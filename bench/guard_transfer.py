"""Guard transfer benchmark: train on ../shared/data sets other than OpenAI moderation, evaluate on
OpenAI moderation's 1,680 samples (binary: a sample is unsafe when any known key is 1).

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python bench/guard_transfer.py [--recipes baseline,default]
        [--epochs 1] [--max-length 128] [--hatecheck 600] [--out /tmp/guard-bench]

Training mix (the labels each set carries): Aegis 2.0 subset (unsafe prompts with their category,
and the safe replies as prompt+response examples), AdvBench goals (unsafe, category unknown),
HateCheck cases (hateful -> unsafe Hate/Identity Hate, non-hateful -> safe; a seeded sample), and
the oasst prompter messages (safe). Prints one JSON line per recipe.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def aegis_codes() -> tuple[list[str], dict[str, str]]:
    from annotation.presets import AEGIS_2

    codes = [c.code for c in AEGIS_2.categories]
    names = {}
    for c in AEGIS_2.categories:
        for s in (c.code, c.name, *c.aliases):
            names[s.lower()] = c.code
    return codes, names


def training_examples(hatecheck_n: int, seed: int):
    from exports.guard.ml.data import Example

    codes, names = aegis_codes()
    out = []
    with open(DATA / "aegis2-subset" / "aegis2_900_unsafe_prompt_safe_response.csv", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            cat = names.get(row["category"].strip().lower())
            key = f"aegis:{row['id']}"
            out.append(Example(key, row["prompt"], None, 1, (cat,) if cat else None))
            if row.get("instruct_response"):
                out.append(Example(key, row["prompt"], row["instruct_response"], 0, ()))
    with open(DATA / "advbench" / "harmful_behaviors.csv", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            out.append(Example(f"adv:{i}", row["goal"], None, 1, None))
    with open(DATA / "hatecheck" / "test_suite_cases.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    random.Random(seed).shuffle(rows)
    for row in rows[:hatecheck_n]:
        hateful = row["label_gold"] == "hateful"
        out.append(Example(f"hc:{row['case_id']}", row["test_case"].strip(), None, int(hateful), ("S8",) if hateful else ()))
    with open(DATA / "oasst-en100" / "en_100_message.jsonl", encoding="utf-8") as fh:
        for line in fh:
            m = json.loads(line)
            if m["role"] == "prompter":
                out.append(Example(f"oasst:{m['message_id']}", m["text"], None, 0, ()))
    return codes, out


def moderation_examples():
    from exports.guard.ml.data import Example

    keys = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")
    out = []
    with gzip.open(DATA / "openai-moderation" / "samples-1680.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            row = json.loads(line)
            out.append(Example(f"mod:{i}", row["prompt"], None, int(any(row.get(k) == 1 for k in keys)), None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", default="baseline,default")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--hatecheck", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/guard-bench"))
    args = ap.parse_args()
    from exports.guard.ml.config import GuardTrainConfig
    from exports.guard.ml.data import data_counts
    from exports.guard.ml.evaluate import evaluate_folder
    from exports.guard.ml.train import main as train

    codes, examples = training_examples(args.hatecheck, args.seed)
    test = moderation_examples()
    print(json.dumps({"train": data_counts(examples)["examples"], "unsafe": data_counts(examples)["unsafe"],
                      "eval": len(test), "eval_unsafe": sum(e.label for e in test)}), flush=True)
    for recipe in args.recipes.split(","):
        folder = args.out / recipe
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.monotonic()
        cfg = GuardTrainConfig(recipe=recipe, epochs=args.epochs, batch_size=32, max_length=args.max_length, seed=args.seed,
                               progress_every=20)
        train(cfg, examples, codes=codes, taxonomy={"slug": "aegis-2.0", "version": 1}, out_dir=folder,
              progress=lambda recipe=recipe, **kw: print(recipe, kw, file=sys.stderr, flush=True) if kw.get("step") else None)
        t_train = time.monotonic() - t0
        t1 = time.monotonic()
        report = evaluate_folder(folder, test, with_categories=False)
        b = report["binary"]
        print(json.dumps({"recipe": recipe, "train_s": round(t_train, 1), "eval_s": round(time.monotonic() - t1, 1),
                          "eval_texts_per_s": round(len(test) / (time.monotonic() - t1), 1),
                          **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in b.items()}}), flush=True)


if __name__ == "__main__":
    main()
