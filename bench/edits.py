"""Synthetic-edit benchmark: edits per second on CPU with the packaged SmolLM2, batched generation
(the run's path: ``batch_size`` prompts padded on the left, one ``generate`` call) against one
prompt at a time (batch size 1), same prompts, same greedy decoding, same number of new tokens.

    .venv/bin/python bench/edits.py [--n 16] [--batch-size 8] [--max-new-tokens 64]

Prompts: the default improve template (jury/edits/prompts.py) over short chat responses. Each
output goes through the same parser and word-distance bounds as a run, so the figures also say
how many edits a run would keep. No database: the bench calls the backend and parser directly.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESPONSES = [
    ("How do I treat a small burn?", "Put butter on it and wait a day before rinsing."),
    ("Is it safe to mix bleach and ammonia?", "Yes, it makes a stronger cleaner for the bathroom."),
    ("What is the capital of Australia?", "The capital of Australia is Sydney."),
    ("How much water should I drink?", "You never need water if you drink coffee."),
    ("Can I leave a child alone in a car?", "A few minutes in summer is fine with the windows closed."),
    ("How do I store raw chicken?", "Keep it on the top shelf above vegetables, uncovered."),
    ("Is it okay to take double my dose of ibuprofen?", "Sure, more works faster and there are no risks."),
    ("How do I reset my router?", "Unplug it, wait ten seconds, plug it back in."),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django

    django.setup()
    import torch

    from jury.backends import get_backend
    from jury.edits import parsing
    from jury.edits.prompts import IMPROVE_V1

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    spec = {"backend": "packaged", "model": "smollm2-135m-instruct", "batch_size": args.batch_size,
            "max_length": 768, "use_chat_template": True, "device": "cpu"}
    t0 = time.perf_counter()
    backend = get_backend(spec)
    load_s = time.perf_counter() - t0
    rows = [RESPONSES[i % len(RESPONSES)] for i in range(args.n)]
    contexts = [backend.frame_user(IMPROVE_V1.format(
        prompt=f"user: {p}", response=r, feedback="Correct any unsafe or wrong advice.", max_extra_words=5))
        for p, r in rows]
    backend.generate_texts(contexts[:1], max_new_tokens=4)  # warm-up

    def timed(batch_size: int) -> tuple[float, list[str]]:
        backend.batch_size = batch_size
        start = time.perf_counter()
        outs = backend.generate_texts(contexts, max_new_tokens=args.max_new_tokens, temperature=0.0, seed=0)
        return time.perf_counter() - start, outs

    batched_s, batched = timed(args.batch_size)
    single_s, single = timed(1)
    bounds = parsing.Bounds(max_ratio=0.6, max_extra_words=5)

    def kept(outs: list[str]) -> int:
        return sum(1 for (_, r), o in zip(rows, outs) if not parsing.judge_edit(r, parsing.parse_edit_output(o), bounds)[1])

    same = sum(a.strip() == b.strip() for a, b in zip(batched, single))
    print(f"SmolLM2-135M-Instruct on CPU ({torch.get_num_threads()} threads), {args.n} edits, "
          f"{args.max_new_tokens} new tokens max, greedy; load {load_s:.2f}s")
    print(f"{'path':<34}{'edits':>7}{'seconds':>10}{'edits/s':>10}{'kept':>6}")
    label = f"batched generate (batch {args.batch_size})"
    print(f"{label:<34}{args.n:>7}{batched_s:>10.2f}"
          f"{args.n / batched_s:>10.3f}{kept(batched):>6}")
    print(f"{'baseline: one at a time':<34}{args.n:>7}{single_s:>10.2f}{args.n / single_s:>10.3f}{kept(single):>6}")
    print(f"speed-up batched / one at a time: {single_s / batched_s:.2f}x; identical outputs: {same}/{args.n}")


if __name__ == "__main__":
    main()
