"""Batched log-probability scoring of whole label sequences. Worker-only (imports torch).

For a batch of contexts, each with its own set of label token sequences, we want
``log p(label | context) = sum_j log p(label[j] | context, label[:j])`` for every label.

1. One forward pass over the left-padded contexts with ``logits_to_keep=1``: only the last
   position's logits are computed. Gemma 3's output layer has 262k rows, so computing logits at
   every position would dominate the cost; here it is one row per context. That row scores the
   first token of every label; single-token labels are finished.
2. Labels of several tokens continue from the cached keys/values of their context: the label
   tokens (except the last) run in one more small batch over the cached context, with logits
   only at the label positions. Labels that share a prefix share a row (see below), so the
   second pass has about two rows per context even with two dozen category labels.

``score_full`` is the plain reference (context + label concatenated, one sequence per label); the
tests check both agree.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)


@torch.inference_mode()
def score_batch(
    model,
    contexts: Sequence[Sequence[int]],
    label_sets: Sequence[Sequence[Sequence[int]]],
    *,
    pad_id: int,
    pair_batch: int = 32,
) -> list[list[float]]:
    """Log-probs of each label sequence after each context.

    contexts: B token lists; label_sets: for each context, K_b label token lists (each >= 1 token).
    Returns B lists of K_b floats.
    """
    device = model.device
    ids, mask = _left_pad(contexts, pad_id, device)  # [B, T]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # padding-aware positions
    needs_more = any(len(lab) > 1 for labels in label_sets for lab in labels)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=needs_more, logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)  # [B, V]
    scores = [[float(first[b, lab[0]]) for lab in labels] for b, labels in enumerate(label_sets)]
    if not needs_more:
        return scores

    cache = out.cache
    lengths = mask.sum(-1)  # [B] real tokens per context
    # The continuation inputs are label[:-1]. Labels often share them ("unsafe\nCategory: S1" and
    # "...: S2" both continue from "...: S"), and because attention is causal a row also yields the
    # next-token distribution after each of its own prefixes. So each context needs only its
    # *maximal* inputs (those that are no other input's prefix) as rows: for the 23 Aegis category
    # labels that is 2 rows instead of 23.
    rows_spec: list[tuple[int, list[int]]] = []  # (context index, input tokens)
    serve: list[tuple[int, int, int]] = []  # (context, label, row) for labels longer than one token
    for b, labels in enumerate(label_sets):
        inputs = sorted({tuple(lab[:-1]) for lab in labels if len(lab) > 1}, key=len, reverse=True)
        kept: list[tuple[int, ...]] = []
        for inp in inputs:
            if not any(k[: len(inp)] == inp for k in kept):
                kept.append(inp)
        first_row = len(rows_spec)
        rows_spec.extend((b, list(k)) for k in kept)
        for k, lab in enumerate(labels):
            if len(lab) > 1:
                inp = tuple(lab[:-1])
                row = next(first_row + n for n, kk in enumerate(kept) if kk[: len(inp)] == inp)
                serve.append((b, k, row))
    by_row: dict[int, list[tuple[int, int]]] = {}
    for b, k, row in serve:
        by_row.setdefault(row, []).append((b, k))
    for start in range(0, len(rows_spec), pair_batch):
        group = rows_spec[start:start + pair_batch]
        rows = torch.tensor([b for b, _ in group], device=device)
        width = max(len(inp) for _, inp in group)
        cont_ids = torch.full((len(group), width), pad_id, dtype=torch.long, device=device)
        cont_mask = torch.zeros((len(group), width), dtype=torch.long, device=device)
        for r, (_, tokens) in enumerate(group):
            cont_ids[r, : len(tokens)] = torch.tensor(tokens, device=device)
            cont_mask[r, : len(tokens)] = 1  # right padding: pads come after the real tokens, so they never affect them
        sub_cache = copy.deepcopy(cache)
        sub_cache.batch_select_indices(rows)  # [R, ...] one cache row per continuation row
        full_mask = torch.cat([mask[rows], cont_mask], dim=-1)
        cont_pos = lengths[rows].unsqueeze(-1) + torch.arange(width, device=device).unsqueeze(0)
        step = model(
            input_ids=cont_ids, attention_mask=full_mask, position_ids=cont_pos,
            cache=sub_cache, use_cache=True, logits_to_keep=width,
        )
        logp = torch.log_softmax(step.logits.float(), dim=-1)  # [R, width, V]
        for r in range(len(group)):
            for b, k in by_row.get(start + r, []):
                lab = label_sets[b][k]
                targets = torch.tensor(lab[1:], device=device)
                scores[b][k] += float(logp[r, torch.arange(len(lab) - 1, device=device), targets].sum())
        del sub_cache, step, logp
    return scores


@torch.inference_mode()
def score_full(
    model, contexts: Sequence[Sequence[int]], label_sets: Sequence[Sequence[Sequence[int]]], *, pad_id: int
) -> list[list[float]]:
    """Reference implementation: one left-padded sequence per (context, label)."""
    device = model.device
    seqs, index = [], []
    for b, labels in enumerate(label_sets):
        for k, lab in enumerate(labels):
            seqs.append(list(contexts[b]) + list(lab))
            index.append((b, k, len(lab)))
    ids, mask = _left_pad(seqs, pad_id, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    keep = max(n for _, _, n in index) + 1
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep)
    logp = torch.log_softmax(out.logits.float(), dim=-1)  # [S, keep, V]; position keep-1 is the last token
    scores = [[0.0] * len(labels) for labels in label_sets]
    for s, (b, k, n) in enumerate(index):
        lab = seqs[s][-n:]
        # the token at sequence position T-n+j is predicted by position T-n+j-1 = keep-1-n+j in the kept slice
        total = 0.0
        for j, tok in enumerate(lab):
            total += float(logp[s, keep - 2 - n + 1 + j, tok])
        scores[b][k] = total
    return scores


@torch.inference_mode()
def generate(model, context: Sequence[int], *, pad_id: int, max_new_tokens: int = 8) -> list[int]:
    ids = torch.tensor([list(context)], device=model.device)
    out = model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
        pad_token_id=pad_id,
    )
    return out[0, ids.shape[1]:].tolist()
