"""The streaming shortcuts give exactly what the plain code gives: the seeded split (including
the one-split case that skips the hash), and the prefetching reader (a helper thread on the same
connection) against a plain loop, down to the bytes of the exported files."""
from __future__ import annotations

import functools
import hashlib

import pytest

from exports import pipeline
from exports.evidence import iter_chunks
from exports.options import SPLITS, build_options
from exports.pipeline import run_export, split_of, splitter
from tests.exports.test_interfaces import _many, ranked_and_safety_items  # noqa: F401  (fixture)


def _split_reference(item_id: int, seed: int, shares: tuple[float, ...]) -> str:
    """The split formula written out plainly (sha256 of "seed:id" placed on [0, 1))."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name, share in zip(SPLITS, shares):
        edge += share
        if share > 0 and u < edge:
            return name
    return [n for n, s in zip(SPLITS, shares) if s > 0][-1]


@pytest.mark.parametrize("split", ["1,0,0", "0,1,0", "0,0,1", "0.8,0.1,0.1", "0.5,0,0.5", "0,0.3,0.7"])
def test_splitter_matches_the_plain_formula(split):
    options = build_options({"format": "dpo", "split": split, "seed": 7})
    fast = splitter(options)
    ids = list(range(1, 3000)) + [2**31 - 1, 2**40 + 5]
    assert [fast(i) for i in ids] == [_split_reference(i, 7, options.split) for i in ids]
    assert [split_of(i, options) for i in ids[:50]] == [_split_reference(i, 7, options.split) for i in ids[:50]]


@pytest.mark.django_db
def test_prefetching_reader_yields_what_the_plain_loop_yields(project, raters, ranked_and_safety_items, tmp_path, monkeypatch):
    _many(project, raters, 30, start=500)
    for raw in ({"format": "dpo"}, {"format": "guard-aegis", "exclude_flagged": True}, {"format": "kto", "signal": "safety"}):
        options = build_options({**raw, "chunk_size": 4})
        plain = [ev for chunk in iter_chunks(project=project, options=options, prefetch=False) for ev in chunk]
        fetched = [ev for chunk in iter_chunks(project=project, options=options, prefetch=True) for ev in chunk]
        assert len(plain) == len(fetched) > 40
        for a, b in zip(plain, fetched):
            assert (a.item_id, a.external_id, a.prompt, a.responses) == (b.item_id, b.external_id, b.prompt, b.responses)
            assert [r.raw() for r in a.records] == [r.raw() for r in b.records]
    # a consumer that stops early stops the helper thread and can use the connection again
    chunks = iter_chunks(project=project, options=build_options({"format": "dpo", "chunk_size": 3}))
    next(chunks)
    chunks.close()
    from annotation.models import Item
    assert Item.objects.filter(project=project).count() > 40
    # whole exports: the same bytes with and without the prefetch thread, mixed data, several splits
    options = build_options({"format": "dpo", "chunk_size": 4, "split": "0.5,0.25,0.25", "seed": 3,
                             "pair_policy": "all-ordered-pairs", "include_margin": True, "tie_policy": "expand",
                             "outputs": ["jsonl", "parquet"]})
    run_export(project=project, options=options, out_dir=tmp_path / "prefetch")
    monkeypatch.setattr(pipeline, "iter_chunks", functools.partial(iter_chunks, prefetch=False))
    run_export(project=project, options=options, out_dir=tmp_path / "plain")
    files = sorted(p.name for p in (tmp_path / "plain").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "prefetch").iterdir()) and "train.jsonl" in files
    for name in files:
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "prefetch" / name).read_bytes(), name
