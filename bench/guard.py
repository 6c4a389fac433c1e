"""Guard speed benchmark (issue 9, part 8): CPU inference texts/s of a default-recipe guard, naive vs
batched + length-sorted + inference_mode vs the same with dynamic int8 quantisation (and the
accuracy it costs), against the default LLM jury's items/s; and the default recipe's training time
on ~10k examples. Everything in one run, so the ratios share the machine's state.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=. .venv/bin/python bench/guard.py \\
        --guard /tmp/guard-bench/default [--parts infer,jury,train] [--n 512] [--repeats 3]
        [--train-full] [--train-steps 40] [--json out.json]

``--guard``: a trained default-recipe folder (bench/guard_transfer.py writes one); the speed does
not depend on its weights, the int8 accuracy cost does. Texts: XSTest v2's 450 prompts (short,
realistic prompts) and OpenAI moderation samples (long web text), at the guard's max_length
(128 in the transfer run). Timing includes tokenisation; a warm-up pass first; the modes are
interleaved and repeated and the median is reported (the machine is shared).

Modes:
  naive-1       one text at a time (batch 1), torch.no_grad
  naive-padded  unsorted batches of 64, every text padded to max_length, torch.no_grad
  sorted        batches of 64 sorted by length, padded to the longest in the batch, inference_mode
                (modeling.predict_logits: the path LoadedGuard.predict and the worker take)
  sorted-int8   the same after exports.guard.ml.quantize.quantize_guard (int8 nn.Linear in the encoder)

Jury: bench/jury.py's measure_model (cached load, its batched log-prob timing on XSTest prompts,
batch 8, max_length 768) for each packaged juror; the jury judges every item with both, so its
items/s is 1 / (1/a + 1/b).

Training: ~10k examples from ../shared/data (bench/guard_transfer.py's sources, no evaluation set),
default recipe, batch 32; steps/s measured between progress reports (load and warm-up excluded)
for a few configurations, each for ``--train-steps`` steps, and ``--train-full``: one full run of
the chosen configuration, wall clock from start to the written folder.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def load_texts(n: int) -> dict[str, list]:
    import guard_transfer as gt

    sets = gt.eval_sets(0)
    return {"xstest": sets["xstest"][:n], "openai-moderation": sets["openai-moderation"][:n]}


def token_stats(tokenizer, texts: list[str], max_length: int) -> dict:
    raw = [len(tokenizer(t)["input_ids"]) for t in texts]
    used = [min(x, max_length) for x in raw]
    return {"mean": round(statistics.mean(used), 1), "median": statistics.median(used), "max": max(used),
            "truncated_share": round(sum(x > max_length for x in raw) / len(raw), 3)}


def naive_one(model, tokenizer, texts, max_length):
    import torch

    model.eval()
    with torch.no_grad():
        for t in texts:
            enc = tokenizer(t, truncation=True, max_length=max_length, return_tensors="pt")
            model(enc["input_ids"], enc["attention_mask"])


def naive_padded(model, tokenizer, texts, max_length, batch=64):
    import torch

    model.eval()
    with torch.no_grad():
        for s in range(0, len(texts), batch):
            enc = tokenizer(texts[s:s + batch], truncation=True, max_length=max_length, padding="max_length",
                            return_tensors="pt")
            model(enc["input_ids"], enc["attention_mask"])


def sorted_batches(model, tokenizer, texts, max_length, batch=64):
    from exports.guard.ml.modeling import predict_logits

    predict_logits(model, tokenizer, [(t, None) for t in texts], max_length=max_length, batch_size=batch)


def bench_inference(folder: Path, n: int, repeats: int) -> dict:
    import guard_transfer as gt
    import numpy as np
    import torch

    from exports.guard.ml.modeling import LoadedGuard
    from exports.guard.ml.quantize import quantize_guard

    fp = LoadedGuard(folder)
    q = quantize_guard(LoadedGuard(folder))
    max_length = fp.max_length
    out: dict = {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
                 "max_length": max_length, "quantized_engine": torch.backends.quantized.engine, "sets": {}}
    modes = {
        "naive-1": lambda texts: naive_one(fp.model, fp.tokenizer, texts, max_length),
        "naive-padded": lambda texts: naive_padded(fp.model, fp.tokenizer, texts, max_length),
        "sorted": lambda texts: sorted_batches(fp.model, fp.tokenizer, texts, max_length),
        "sorted-int8": lambda texts: sorted_batches(q.model, q.tokenizer, texts, max_length),
    }
    for name, exs in load_texts(n).items():
        texts = [ex.prompt for ex in exs]
        res: dict = {"n": len(texts), "tokens": token_stats(fp.tokenizer, texts, max_length), "texts_per_s": {}}
        for fn in modes.values():  # warm-up
            fn(texts[:16])
        times: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(repeats):
            for mode, fn in modes.items():
                t0 = time.perf_counter()
                fn(texts)
                times[mode].append(time.perf_counter() - t0)
        for mode, ts in times.items():
            res["texts_per_s"][mode] = round(len(texts) / statistics.median(ts), 1)
            res.setdefault("per_repeat_texts_per_s", {})[mode] = [round(len(texts) / t, 1) for t in ts]
        out["sets"][name] = res
        print(json.dumps({"inference": name, **res}), flush=True)

    # Accuracy cost of int8: the same guard, the same full evaluation sets, float vs int8.
    sets = gt.eval_sets(0)
    acc = {}
    for name in ("openai-moderation", "xstest", "hatecheck"):
        exs = sets[name]
        pairs = [(ex.prompt, None) for ex in exs]
        p_f, _ = fp.predict(pairs)
        p_q, _ = q.predict(pairs)
        m_f = gt.set_metrics(exs, p_f, fp.manifest.threshold)
        m_q = gt.set_metrics(exs, p_q, fp.manifest.threshold)
        acc[name] = {
            "n": len(exs),
            "float": {k: round(m_f[k], 4) for k in ("f1", "auroc", "flagged_safe_share")},
            "int8": {k: round(m_q[k], 4) for k in ("f1", "auroc", "flagged_safe_share")},
            "delta_f1": round(m_q["f1"] - m_f["f1"], 4), "delta_auroc": round(m_q["auroc"] - m_f["auroc"], 4),
            "decisions_changed": int(np.sum((p_f >= fp.manifest.threshold) != (p_q >= fp.manifest.threshold))),
            "max_abs_p_diff": round(float(np.max(np.abs(p_f - p_q))), 4),
        }
        print(json.dumps({"int8_accuracy": name, **acc[name]}), flush=True)
    out["int8_accuracy"] = acc
    return out


def _jury_child(*args) -> None:
    """In a spawned process: bench/jury.py's measure_model (loaded from its file by name there)."""
    import guard_transfer as gt

    gt.bench_jury().measure_model(*args)


def bench_jury_speed(speed_items: int, repeats: int) -> dict:
    import guard_transfer as gt

    ctx = mp.get_context("spawn")
    per = {}
    for key, _version in gt.JURY:
        queue = ctx.Queue()
        # measure_model(key, n, speed_items, batch, max_length, cold, repeats, queue); n=2: a token quality pass
        proc = ctx.Process(target=_jury_child, args=(key, 2, speed_items, 8, 768, False, repeats, queue))
        proc.start()
        r = queue.get()
        proc.join()
        per[key] = {"logprob_items_per_s": round(r["logprob_items_per_s"], 2), "context_tokens_mean": round(r["context_tokens_mean"]),
                    "speed_items": r["speed_items"], "device": r["device"], "dtype": r["dtype"]}
        print(json.dumps({"juror": key, **per[key]}), flush=True)
    jury = 1.0 / sum(1.0 / v["logprob_items_per_s"] for v in per.values())
    return {"jurors": per, "jury_items_per_s": round(jury, 3)}


def _timed_enough(marks: list[tuple[int, float, float]], steps: int) -> bool:
    return bool(marks) and marks[-1][0] >= steps


def train_pool(seed: int = 0) -> list:
    import guard_transfer as gt

    return gt.training_examples(list(gt.ALL_SOURCES), 0, seed)


def bench_training(steps: int, full: dict | None, configs: list[dict]) -> dict:
    import guard_transfer as gt

    from exports.guard.ml.config import GuardTrainConfig
    from exports.guard.ml.train import GuardCancelled
    from exports.guard.ml.train import main as train

    codes, _ = gt.aegis_codes()
    examples = train_pool()
    n_train = round(len(examples) * 0.8)
    out: dict = {"examples": len(examples), "train_split_approx": n_train, "configs": []}
    print(json.dumps({"training_pool": len(examples)}), flush=True)
    import shutil
    import tempfile

    for extra in configs:
        cfg = GuardTrainConfig(recipe="default", epochs=1, batch_size=32, progress_every=5, **extra)
        marks: list[tuple[int, float, float]] = []

        def progress(marks=marks, **kw):
            if kw.get("phase") == "training" and kw.get("step"):
                marks.append((kw["step"], time.perf_counter(), time.process_time()))

        tmp = Path(tempfile.mkdtemp(prefix="guard-speed-"))
        try:
            # Stop once the steps are timed (no calibration pass, nothing written).
            train(cfg, examples, codes=codes, taxonomy={"slug": "aegis-2.0", "version": 1}, out_dir=tmp / "g",
                  progress=progress, should_stop=functools.partial(_timed_enough, marks, steps))
        except GuardCancelled:
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        (s0, t0, c0), (s1, t1, c1) = marks[0], marks[-1]
        sps = (s1 - s0) / (t1 - t0)
        cpu_per_step = (c1 - c0) / (s1 - s0)  # CPU seconds of this process (all its threads) per step
        steps_epoch = math.ceil(n_train / cfg.batch_size)
        row = {"config": {"max_length": cfg.max_length, **extra}, "steps_measured": s1 - s0, "steps_per_s": round(sps, 3),
               "cpu_s_per_step": round(cpu_per_step, 2), "steps_per_epoch": steps_epoch,
               "epoch_minutes_extrapolated": round(steps_epoch / sps / 60, 1),
               # on two cores to itself, a step's wall time is at best its CPU time / 2
               "epoch_minutes_if_2_free_cores": round(steps_epoch * cpu_per_step / 2 / 60, 1)}
        out["configs"].append(row)
        print(json.dumps({"training": row}), flush=True)
    if full is not None:
        cfg = GuardTrainConfig(recipe="default", batch_size=32, progress_every=25, **full)
        tmp = Path(tempfile.mkdtemp(prefix="guard-speed-"))
        t0 = time.perf_counter()
        try:
            manifest = train(cfg, examples, codes=codes, taxonomy={"slug": "aegis-2.0", "version": 1}, out_dir=tmp / "g")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        out["full_run"] = {"config": full, "steps": manifest["training"]["steps"], "wall_s": round(time.perf_counter() - t0, 1),
                           "validation_f1": round(manifest["metrics"]["validation"]["binary"]["f1"], 3),
                           "validation_auroc": round(manifest["metrics"]["validation"]["binary"]["auroc"], 3)}
        print(json.dumps({"training_full": out["full_run"]}), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--guard", type=Path, default=Path("/tmp/guard-bench/default"))
    ap.add_argument("--parts", default="infer,jury,train")
    ap.add_argument("--n", type=int, default=450, help="texts per set for the speed runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jury-items", type=int, default=24)
    ap.add_argument("--train-steps", type=int, default=40)
    ap.add_argument("--train-full", action="store_true", help="also one full run of --full-config")
    ap.add_argument("--full-config", default='{"max_length": 128, "epochs": 1}', help="JSON of GuardTrainConfig fields")
    ap.add_argument("--train-configs", default='[{"max_length": 256}, {"max_length": 128}, {"max_length": 128, "group_by_length": true}, '
                                                '{"max_length": 128, "group_by_length": true, "freeze_layers": 3}]')
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    result: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    if "infer" in parts:
        if not (args.guard / "guard.json").is_file():
            sys.exit(f"{args.guard} is not a guard folder: run bench/guard_transfer.py first (it writes /tmp/guard-bench/default).")
        result["inference"] = bench_inference(args.guard, args.n, args.repeats)
    if "jury" in parts:
        result["jury"] = bench_jury_speed(args.jury_items, args.repeats)
    if "train" in parts:
        result["training"] = bench_training(args.train_steps, json.loads(args.full_config) if args.train_full else None,
                                            json.loads(args.train_configs))
    print_summary(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def print_summary(result: dict) -> None:
    inf = result.get("inference")
    jury = (result.get("jury") or {}).get("jury_items_per_s")
    if inf:
        print(f"\n== inference, CPU, torch threads {inf['torch_threads']} (interop {inf['torch_interop_threads']}), "
              f"max_length {inf['max_length']}, median texts/s ==")
        modes = list(next(iter(inf["sets"].values()))["texts_per_s"])
        print(f"{'set':18} {'tokens mean/med/max':>20} {'trunc':>6} " + " ".join(f"{m:>12}" for m in modes)
              + f" {'int8/sorted':>11} {'sorted/naive1':>13}" + (f" {'sorted/jury':>11}" if jury else ""))
        for name, r in inf["sets"].items():
            tps = r["texts_per_s"]
            tok = r["tokens"]
            print(f"{name:18} {tok['mean']:>9}/{tok['median']:>4}/{tok['max']:>4} {tok['truncated_share']:6.2f} "
                  + " ".join(f"{tps[m]:12.1f}" for m in modes)
                  + f" {tps['sorted-int8'] / tps['sorted']:10.2f}x {tps['sorted'] / tps['naive-1']:12.2f}x"
                  + (f" {tps['sorted'] / jury:10.0f}x" if jury else ""))
        print("\n== int8 accuracy cost (same guard, full sets, the guard's threshold) ==")
        for name, a in inf["int8_accuracy"].items():
            print(f"{name:18} F1 {a['float']['f1']:.4f} -> {a['int8']['f1']:.4f} ({a['delta_f1']:+.4f}); "
                  f"AUROC {a['float']['auroc']:.4f} -> {a['int8']['auroc']:.4f} ({a['delta_auroc']:+.4f}); "
                  f"{a['decisions_changed']}/{a['n']} decisions changed")
    if jury:
        print(f"\n== LLM jury (bench/jury.py log-prob path, CPU): {jury:.2f} items/s; "
              + ", ".join(f"{k} {v['logprob_items_per_s']} it/s" for k, v in result["jury"]["jurors"].items()) + " ==")
    tr = result.get("training")
    if tr:
        print(f"\n== training, default recipe, {tr['examples']} examples (~{tr['train_split_approx']} in the train split), batch 32 ==")
        for row in tr["configs"]:
            print(f"{json.dumps(row['config']):70} {row['steps_per_s']:.3f} steps/s, {row['cpu_s_per_step']} CPU s/step over "
                  f"{row['steps_measured']} steps -> {row['epoch_minutes_extrapolated']} min per epoch ({row['steps_per_epoch']} steps) "
                  f"as measured; {row['epoch_minutes_if_2_free_cores']} min with 2 free cores")
        if "full_run" in tr:
            f = tr["full_run"]
            print(f"full run {json.dumps(f['config'])}: {f['steps']} steps, {f['wall_s'] / 60:.1f} min wall "
                  f"(load, train, calibrate, write); validation F1 {f['validation_f1']} AUROC {f['validation_auroc']}")


if __name__ == "__main__":
    main()
