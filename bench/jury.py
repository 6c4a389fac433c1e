"""Jury benchmark: speed of batched log-prob judging vs generate-then-parse, model load times, peak
memory, and the quality of each packaged juror and of the jury on real labelled data.

    .venv/bin/python bench/jury.py [--n 120] [--speed-items 48] [--models smollm2-135m-instruct,gemma3-270m]

For each model, in its own process (so peak memory is that model's):
  - cold load: GGUF from the PyPI package -> de-quantised -> saved as safetensors (into a scratch
    cache folder), vs cached load: from the converted folder (the path the worker takes);
  - speed, same model, same items, same batch size, same prompt (safety/v1, "safe"/"unsafe"):
    batched log-prob judging (one forward pass, logits only at the answer) vs batched greedy
    generation of up to 8 tokens, then parsing the text; also the product path (log-prob + the
    taxonomy's category continuations);
  - quality: P(unsafe) for a stratified sample of XSTest prompts (label column) and of the OpenAI
    moderation set (unsafe if any of the 8 labels is 1, safe if all 8 are known and 0), with two
    prompt templates (safety/v1, safety/v2), through the same code the worker runs
    (jury.judging.build_targets + verdict_fields).
The parent prints F1 (threshold 0.5, unsafe = positive), AUROC and Cohen's kappa for each juror and
for the jury (mean probability of the two, the default rule), per data set and template.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRIBUNAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT))


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django

    django.setup()


def load_xstest(n: int, seed: int = 0) -> list[tuple[str, int]]:
    rows = list(csv.DictReader(open(DATA / "xstest" / "xstest_prompts.csv", encoding="utf-8")))
    return _stratified([(r["prompt"], 1 if r["label"] == "unsafe" else 0) for r in rows], n, seed)


def load_moderation(n: int, seed: int = 0) -> list[tuple[str, int]]:
    keys = ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]
    out = []
    with gzip.open(DATA / "openai-moderation" / "samples-1680.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if any(row.get(k) == 1 for k in keys):
                out.append((row["prompt"], 1))
            elif all(row.get(k) == 0 for k in keys):
                out.append((row["prompt"], 0))
    return _stratified(out, n, seed)


def _stratified(rows: list[tuple[str, int]], n: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    pos = [r for r in rows if r[1] == 1]
    neg = [r for r in rows if r[1] == 0]
    rng.shuffle(pos)
    rng.shuffle(neg)
    sample = pos[: n // 2] + neg[: n - n // 2]
    rng.shuffle(sample)
    return sample


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_model(key: str, n: int, speed_items: int, batch: int, max_length: int, cold: bool, repeats: int,
                  queue) -> None:
    """Runs in a child process; puts a dict of figures on the queue."""
    _django()
    import torch
    from django.conf import settings

    from annotation.presets import AEGIS_2
    from jury import judging, prompts, scoring
    from jury.backends.base import JudgeRequest
    from jury.backends.local import LocalBackend, dtype_for, resolve_device
    from jury.backends.packaged import convert, ensure_converted

    res: dict = {"model": key}
    device = resolve_device(None)
    res["device"] = str(device)
    res["dtype"] = str(dtype_for(device))
    if cold:
        with tempfile.TemporaryDirectory(dir=settings.MODEL_CACHE_DIR) as tmp:
            t0 = time.perf_counter()
            convert(key, Path(tmp) / "converted")
            res["cold_load_s"] = time.perf_counter() - t0
    ensure_converted(key)
    spec = {"backend": "packaged", "model": key, "batch_size": batch, "max_length": max_length}
    loads = []
    for _ in range(2):
        t0 = time.perf_counter()
        backend = LocalBackend(spec)
        loads.append(time.perf_counter() - t0)
    res["cached_load_s"] = loads
    res["rss_after_load_mb"] = _peak_rss_mb()

    # --- speed: the same items, the same prompt, the same batch size ---
    texts = [p for p, _ in load_xstest(450)][:speed_items]
    template = prompts.get("safety", "v1")
    cats = prompts.categories_block([(c.code, c.name) for c in AEGIS_2.categories])
    plain = [JudgeRequest(template=template, fields={"categories": cats}, texts={"prompt": t}) for t in texts]
    backend.score(plain[:batch])  # warm-up
    ctx = judging.JudgeContext(task="safety", prompt_version="v1",
                               categories=judging.judged_categories([(c.code, c.name) for c in AEGIS_2.categories]),
                               principles=[])
    product = [judging.build_targets(ctx, i, t, [])[0].requests[0][0] for i, t in enumerate(texts)]
    tok = backend.tokenizer
    contexts = [backend.context_ids(backend.render(r)[0]) for r in plain]

    def run_logprob() -> list[int]:
        return [int(r.probs["unsafe"] > 0.5) for r in backend.score(plain)]

    def run_generate() -> tuple[list[int], int]:
        parsed, unparsed = [], 0
        for start in range(0, len(contexts), batch):
            chunk = contexts[start:start + batch]
            ids, mask = scoring._left_pad(chunk, backend.pad_id, backend.model.device)
            with torch.inference_mode():
                out = backend.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False,
                                             pad_token_id=backend.pad_id)
            for row in out[:, ids.shape[1]:]:
                decoded = tok.decode(row, skip_special_tokens=True)
                assert isinstance(decoded, str)  # one row of ids decodes to one string
                text = decoded.strip().lower()
                word = text.split()[0].strip(".,:;!'\"*") if text.split() else ""
                if word in ("safe", "unsafe"):
                    parsed.append(int(word == "unsafe"))
                else:
                    parsed.append(0)
                    unparsed += 1
        return parsed, unparsed

    # The machine is shared: the three ways are interleaved, repeated, and the median is reported.
    times: dict[str, list[float]] = {"logprob": [], "categories": [], "generate": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        lp_labels = run_logprob()
        times["logprob"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        backend.score(product)
        times["categories"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        parsed, unparsed = run_generate()
        times["generate"].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    res["logprob_items_per_s"] = len(plain) / med["logprob"]
    res["logprob_with_categories_items_per_s"] = len(product) / med["categories"]
    res["generate_items_per_s"] = len(contexts) / med["generate"]
    res["speed_ratio_per_repeat"] = [g / lp for lp, g in zip(times["logprob"], times["generate"])]
    res["generate_unparsed"] = unparsed
    res["speed_items"] = len(contexts)
    res["context_tokens_mean"] = sum(len(c) for c in contexts) / len(contexts)
    res["generate_vs_logprob_agreement"] = sum(a == b for a, b in zip(parsed, lp_labels)) / len(parsed)

    # --- quality ---
    res["quality"] = {}
    for version in ("v1", "v2"):
        ctx = judging.JudgeContext(task="safety", prompt_version=version,
                                   categories=judging.judged_categories([(c.code, c.name) for c in AEGIS_2.categories]),
                                   principles=[])
        for name, rows in (("xstest", load_xstest(n)), ("openai-moderation", load_moderation(n))):
            targets = [judging.build_targets(ctx, i, p, [])[0] for i, (p, _) in enumerate(rows)]
            t0 = time.perf_counter()
            results = backend.score([t.requests[0][0] for t in targets])
            seconds = time.perf_counter() - t0
            p_unsafe = [judging.verdict_fields(ctx, t, 0, [r])["p_positive"] for t, r in zip(targets, results)]
            res["quality"][f"{name}/{version}"] = {
                "p": p_unsafe, "y": [y for _, y in rows], "seconds": seconds,
                "truncated": sum(1 for r in results if r.truncation),
            }
    res["peak_rss_mb"] = _peak_rss_mb()
    if device.type == "cuda":
        res["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    queue.put(res)


def metrics(y: list[int], p: list[float]) -> dict:
    from sklearn.metrics import cohen_kappa_score, f1_score, roc_auc_score

    pred = [int(x >= 0.5) for x in p]
    return {
        "f1": f1_score(y, pred, zero_division=0),
        "auroc": roc_auc_score(y, p),
        "kappa": cohen_kappa_score(y, pred),
        "flagged": sum(pred) / len(pred),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=120, help="sample size per data set (stratified, half unsafe)")
    parser.add_argument("--speed-items", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=768)
    parser.add_argument("--models", default="smollm2-135m-instruct,gemma3-270m")
    parser.add_argument("--repeats", type=int, default=3, help="speed repeats (median reported)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold (GGUF conversion) load")
    args = parser.parse_args()
    if not (DATA / "xstest" / "xstest_prompts.csv").exists():
        sys.exit(f"shared data not found under {DATA}")

    ctx = mp.get_context("spawn")
    results = []
    for key in args.models.split(","):
        queue = ctx.Queue()
        proc = ctx.Process(target=measure_model,
                           args=(key, args.n, args.speed_items, args.batch, args.max_length, not args.no_cold,
                                 args.repeats, queue))
        proc.start()
        results.append(queue.get())
        proc.join()

    print(f"\n== speed (same model, same {results[0]['speed_items']} XSTest prompts, batch {args.batch}, "
          f"device {results[0]['device']} {results[0]['dtype']}, median of {args.repeats} interleaved repeats; "
          f"generate = greedy, up to 8 new tokens, then parse the first word) ==")
    print(f"{'model':24} {'logprob it/s':>12} {'+categories':>12} {'generate it/s':>14} {'speed-up':>9} "
          f"{'unparsed':>9} {'agree':>6} {'cold load s':>12} {'cached load s':>14} {'peak RSS MB':>12}")
    for r in results:
        cold = f"{r['cold_load_s']:.1f}" if "cold_load_s" in r else "-"
        cached = "/".join(f"{x:.2f}" for x in r["cached_load_s"])
        print(f"{r['model']:24} {r['logprob_items_per_s']:12.2f} {r['logprob_with_categories_items_per_s']:12.2f} "
              f"{r['generate_items_per_s']:14.2f} {r['logprob_items_per_s'] / r['generate_items_per_s']:8.1f}x "
              f"{r['generate_unparsed']:>5}/{r['speed_items']:<3} {r['generate_vs_logprob_agreement']:6.2f} {cold:>12} "
              f"{cached:>14} {r['peak_rss_mb']:12.0f}")
        ratios = ", ".join(f"{x:.2f}" for x in r["speed_ratio_per_repeat"])
        print(f"{'':24} mean context {r['context_tokens_mean']:.0f} tokens; generate/logprob time per repeat: {ratios}")

    print(f"\n== quality: P(unsafe) vs the data's labels (n={args.n} per set, stratified half unsafe; "
          f"F1/kappa at P(unsafe) >= 0.5) ==")
    print(f"{'data/template':26} {'judge':24} {'F1':>6} {'AUROC':>6} {'kappa':>6} {'flagged':>8}")
    for key in results[0]["quality"]:
        ys = results[0]["quality"][key]["y"]
        rows = []
        for r in results:
            q = r["quality"][key]
            rows.append((r["model"], metrics(q["y"], q["p"])))
        jury_p = [sum(r["quality"][key]["p"][i] for r in results) / len(results) for i in range(len(ys))]
        rows.append(("jury (mean prob.)", metrics(ys, jury_p)))
        for judge, m in rows:
            print(f"{key:26} {judge:24} {m['f1']:6.3f} {m['auroc']:6.3f} {m['kappa']:6.3f} {m['flagged']:8.2f}")
        best = max(m["auroc"] for judge, m in rows[:-1])
        verdict = "beats" if rows[-1][1]["auroc"] > best else "does not beat"
        print(f"{'':26} -> the jury {verdict} its best member on AUROC ({rows[-1][1]['auroc']:.3f} vs {best:.3f})")
    for r in results:
        trunc = sum(q["truncated"] for q in r["quality"].values())
        secs = sum(q["seconds"] for q in r["quality"].values())
        print(f"{r['model']}: quality pass {secs:.0f}s, {trunc} truncated contexts")


if __name__ == "__main__":
    main()
