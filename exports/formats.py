"""Dataset rows per format, from one item's consensus.

Every row carries ``item_id`` (Tribunal's item id) and where its label came from
(``label_source``; guard-aegis: ``prompt_label_source`` / ``response_label_source`` in the Aegis
vocabulary). Field names follow the consumers exactly:

- dpo: TRL preference, ``prompt`` / ``chosen`` / ``rejected`` (strings, or message lists in the
  conversational style), optional ``margin`` (OpenRLHF's margin loss reads it);

The standard (string) style has one prompt form for every row, single- and multi-turn alike: the
HH-RLHF transcript ``\\n\\nHuman: …\\n\\nAssistant:`` (``annotation.prompts.prompt_hh_transcript``),
and every completion (``chosen``, ``rejected``, ``completion``, PRO plain ``responses``) starts with
the joining space (``hh_completion``), so prompt + completion is the transcript
``…\\n\\nAssistant: reply`` and the prompt ends on a token boundary (TRL then finds the tokenized
prompt as a prefix of prompt + completion). The conversational style writes message lists instead.

- pro: the PRO reference code's ``prefix`` / ``suffix`` / ``reward`` / ``sft_index`` (+ ``meta``),
  or a plain ``prompt`` / ``responses`` (best first) / ``scores``;
- kto: TRL unpaired preference ``prompt`` / ``completion`` / ``label``;
- d2o: ``prompt`` / ``rejected`` (human-judged negatives);
- sft: TRL prompt-completion ``prompt`` / ``completion`` (the consensus best);
- guard-aegis: the Aegis 2.0 columns as the Aegis data writes them (``id`` is the upstream Aegis id
  when the item came from Aegis, Tribunal's id is in ``item_id``; category names in the data's
  spelling and the row's own order; label sources kept from the row, ``assumed`` where the importer
  assumed a label; a conversation keeps all its turns; an empty response keeps its label);
- guard-llamaguard: ``prompt`` (Llama Guard 3's own prompt of the model card: Llama 3 header
  tokens around the instruction with the project's taxonomy, :mod:`exports.guard.ml.prompting`) /
  ``completion`` (``safe`` or ``unsafe\\n<codes>``, never ``unsafe`` without codes: see
  :func:`llamaguard_target` for needs caution); the conversational style writes the instruction as
  one user message and the answer as one assistant message (TRL conversational prompt-completion),
  so a model's own chat template renders it.

Tie policy (``tie_policy``), used wherever one response must be picked as best or worst (DPO
best-vs-worst, SFT, KTO, D2O) and for PRO's strict order:
``skip`` leaves the item out (counted in the manifest as ``tie``); ``expand`` emits every tied
response (every chosen × rejected combination); ``position`` takes the response that came first in
the source (lowest position) and says so in the card. Pairs are never made between tied responses.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import pyarrow as pa

from annotation.presets import AEGIS_2
from annotation.prompts import hh_completion, prompt_hh_transcript
from exports.consensus import SafetyConsensus
from exports.evidence import ItemEvidence
from exports.guard.ml.prompting import llamaguard3_instruction, llamaguard3_prompt
from exports.options import ExportOptions

AEGIS_COLUMNS = (
    "id",
    "reconstruction_id_if_redacted",
    "prompt",
    "response",
    "prompt_label",
    "response_label",
    "violated_categories",
    "prompt_label_source",
    "response_label_source",
)


class Skip(Exception):
    """The item gives no row; ``reason`` is counted in the manifest."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TaxonomyContext:
    slug: str
    name: str
    version: int
    codes: tuple[str, ...]  # in taxonomy order
    names: dict[str, str]  # code -> canonical name

    @property
    def order(self) -> dict[str, int]:
        return {code: i for i, code in enumerate(self.codes)}


# --- prompt rendering (the prompt's shapes live in annotation.prompts) ---------------------------


def _prompt(ev: ItemEvidence, options: ExportOptions):
    return ev.prompt if options.style == "conversational" else prompt_hh_transcript(ev.prompt)


def _completion(text: str, options: ExportOptions):
    return [{"role": "assistant", "content": text}] if options.style == "conversational" else hh_completion(text)


def _pro_prefix(messages: list[dict]) -> list[str]:
    """PRO's prefix: one string per turn with ``<|prompter|>`` / ``<|assistant|>`` markers and a
    final bare ``<|assistant|>`` (hh_preprocess_data/step_1_process.py); system text is a prompter turn."""
    turns = [("<|assistant|>" if m["role"] == "assistant" else "<|prompter|>") + m["content"] for m in messages]
    return turns + ["<|assistant|>"]


# --- picking by the tie policy ------------------------------------------------------------------


def _pick(ev: ItemEvidence, group: tuple[int, ...], options: ExportOptions) -> list[int]:
    if len(group) == 1:
        return list(group)
    if options.tie_policy == "expand":
        return sorted(group, key=lambda rid: ev.responses[rid][0])
    if options.tie_policy == "position":
        return [min(group, key=lambda rid: ev.responses[rid][0])]
    raise Skip("tie")


def _ordered_groups(ev: ItemEvidence) -> tuple[tuple[int, ...], ...]:
    pref = ev.preference
    if pref is None:
        raise Skip("no_preference")
    if not pref.has_order:
        raise Skip("tie")
    # inside a group, the source order (position) is the stable, stated order of rows
    groups = pref.groups
    for g in groups:
        if len(g) != 1:
            return tuple(g if len(g) == 1 else tuple(sorted(g, key=lambda rid: ev.responses[rid][0])) for g in groups)
    return groups


def _pairs(ev: ItemEvidence, options: ExportOptions) -> list[tuple[int, int]]:
    groups = _ordered_groups(ev)
    if options.pair_policy == "best-vs-worst":
        return list(product(_pick(ev, groups[0], options), _pick(ev, groups[-1], options)))
    if options.pair_policy == "adjacent":
        return [p for g1, g2 in zip(groups, groups[1:]) for p in product(g1, g2)]
    return [p for i, g1 in enumerate(groups) for g2 in groups[i + 1:] for p in product(g1, g2)]


MARGIN_SCALE = (
    "margin is how much better chosen is than rejected, on [0, 1] for every item: a pairwise item's mean stated "
    "strength of the winning votes divided by 3 (1/3 slightly better, 2/3 better, 1 much better); a ranked item's "
    "distance between the two responses' consensus positions divided by the number of positions minus one "
    "(best vs worst = 1, neighbours of 4 positions = 1/3). null where the source states no strength "
    "(e.g. HH-RLHF: raters only picked a side), never a default"
)


def margin_of(ev: ItemEvidence, chosen: int, rejected: int) -> float | None:
    """The DPO ``margin`` on the one scale of :data:`MARGIN_SCALE`; None without real signal."""
    pref = ev.preference
    assert pref is not None  # _pairs: the pairs come from the item's preference
    if pref.method == "pairwise-majority":
        return None if ev.pair_margin is None else round(ev.pair_margin / 3, 6)
    position = {rid: i for i, group in enumerate(pref.groups) for rid in group}
    return round((position[rejected] - position[chosen]) / (len(pref.groups) - 1), 6)


# --- filters ------------------------------------------------------------------------------------


def _task(options: ExportOptions) -> str:
    if options.format.startswith("guard") or (options.format in ("kto", "d2o") and options.signal == "safety"):
        return "safety"
    return "preference"


def check_filters(ev: ItemEvidence, options: ExportOptions) -> None:
    """Raise :class:`Skip` with the filter's name when the item does not pass."""
    if _task(options) == "safety":
        records, agreements = ev.safety_records, [
            c.agreement for c in [ev.prompt_safety, *ev.response_safety.values()] if c is not None and c.agreement is not None
        ]
        source = ev.safety_source
    else:
        records = ev.preference_records
        agreements = [ev.preference.agreement] if ev.preference and ev.preference.agreement is not None else []
        source = ev.preference_source
    if not records:
        raise Skip("no_labels")
    if options.min_annotators is not None and len(records) < options.min_annotators:
        raise Skip("min_annotators")
    if options.min_agreement is not None:
        # One rater has no agreement figure: a minimum agreement cannot be met (--min-annotators
        # is the option about rater counts); counted apart from items below the minimum.
        if len(records) < 2:
            raise Skip("min_agreement_single_rater")
        if agreements and min(agreements) < options.min_agreement:
            raise Skip("min_agreement")
    if options.min_jury_confidence is not None and "jury" in source.split("+"):
        confidences = [r.jury_confidence for r in records if r.source == "jury"]
        if any(c is None or c < options.min_jury_confidence for c in confidences):
            raise Skip("min_jury_confidence")
    if options.categories:
        cats: set[str] = set()
        for c in [ev.prompt_safety, *ev.response_safety.values()]:
            if c is not None:
                cats.update(c.categories)
        if not cats.intersection(options.categories):
            raise Skip("categories")


# --- rows ---------------------------------------------------------------------------------------


def rows_for(ev: ItemEvidence, options: ExportOptions, tax: TaxonomyContext) -> list[dict]:
    check_filters(ev, options)
    fmt = options.format
    if fmt == "dpo":
        return _dpo(ev, options)
    if fmt == "pro":
        return _pro(ev, options)
    if fmt == "sft":
        best = _pick(ev, _ordered_groups(ev)[0], options)
        return [
            {"item_id": ev.item_id, "response_id": rid, "prompt": _prompt(ev, options),
             "completion": _completion(ev.responses[rid][1], options), "label_source": ev.preference_source}
            for rid in best
        ]
    if fmt == "kto":
        return _kto(ev, options)
    if fmt == "d2o":
        return _d2o(ev, options)
    if fmt == "guard-aegis":
        return _aegis(ev, tax)
    if fmt == "guard-llamaguard":
        return _llamaguard(ev, options, tax)
    raise ValueError(fmt)


def _dpo(ev: ItemEvidence, options: ExportOptions) -> list[dict]:
    rows = []
    pairs = _pairs(ev, options)
    item_id, responses, source = ev.item_id, ev.responses, ev.preference_source
    prompt: list[dict] | str  # the messages, or the HH transcript
    if options.style == "conversational":
        prompt = ev.prompt
        def completion(rid):
            return [{"role": "assistant", "content": responses[rid][1]}]
    else:
        prompt = prompt_hh_transcript(ev.prompt)
        def completion(rid):
            return hh_completion(responses[rid][1])
    include_margin = options.include_margin
    for chosen, rejected in pairs:
        # key order is the file's column order
        if include_margin:
            row = {"item_id": item_id, "prompt": prompt, "chosen": completion(chosen), "rejected": completion(rejected),
                   "margin": margin_of(ev, chosen, rejected), "chosen_id": chosen, "rejected_id": rejected,
                   "label_source": source}
        else:
            row = {"item_id": item_id, "prompt": prompt, "chosen": completion(chosen), "rejected": completion(rejected),
                   "chosen_id": chosen, "rejected_id": rejected, "label_source": source}
        rows.append(row)
    return rows


def _pro(ev: ItemEvidence, options: ExportOptions) -> list[dict]:
    groups = _ordered_groups(ev)
    if any(len(g) > 1 for g in groups) and options.tie_policy == "skip":
        raise Skip("tie")
    order = [rid for g in groups for rid in g]  # tied responses: by source position, equal reward
    order = _pro_length(order, options)
    preference = ev.preference
    assert preference is not None  # _ordered_groups skipped the item otherwise
    scores = preference.scores
    rewards = [round(float(scores[rid]), 6) for rid in order]
    texts = [ev.responses[rid][1] for rid in order]
    if options.pro_layout == "pro":
        prefix = _pro_prefix(ev.prompt)
        return [{
            "item_id": ev.item_id,
            "meta": {"item_id": ev.item_id, "external_id": ev.external_id, "method": preference.method,
                     "label_source": ev.preference_source},
            "prefix": [prefix for _ in order],
            "suffix": texts,
            "reward": rewards,
            "sft_index": 0,
            "response_ids": order,
            "label_source": ev.preference_source,
        }]
    return [{
        "item_id": ev.item_id,
        "prompt": _prompt(ev, options),
        "responses": [_completion(t, options) for t in texts],
        "scores": rewards,
        "ranks": [i for i, g in enumerate(groups) for _ in g][: len(order)],
        "response_ids": order,
        "label_source": ev.preference_source,
    }]


def _pro_length(order: list[int], options: ExportOptions) -> list[int]:
    """Apply ``pro_length``: keep at least / exactly N responses, or cut those of at least N to the top N."""
    n = options.pro_length
    if n is None:
        return order
    if len(order) < n or (options.pro_length_policy == "exactly" and len(order) != n):
        raise Skip("pro_length")
    return order[:n] if options.pro_length_policy == "truncate" else order


def _good_bad(ev: ItemEvidence, options: ExportOptions) -> tuple[list[int], list[int], str]:
    if options.signal == "safety":
        good = [rid for rid, c in ev.response_safety.items() if c.label == "safe"]
        bad = [rid for rid, c in ev.response_safety.items() if c.label == "unsafe"]
        if not good and not bad:
            raise Skip("no_response_labels")
        key = lambda rid: ev.responses[rid][0]  # noqa: E731
        return sorted(good, key=key), sorted(bad, key=key), ev.safety_source
    groups = _ordered_groups(ev)
    return _pick(ev, groups[0], options), _pick(ev, groups[-1], options), ev.preference_source


def _kto(ev: ItemEvidence, options: ExportOptions) -> list[dict]:
    good, bad, source = _good_bad(ev, options)
    prompt = _prompt(ev, options)
    rows = [
        {"item_id": ev.item_id, "response_id": rid, "prompt": prompt,
         "completion": _completion(ev.responses[rid][1], options), "label": label, "label_source": source}
        for label, rids in ((True, good), (False, bad)) for rid in rids
    ]
    rows.sort(key=lambda r: ev.responses[r["response_id"]][0])
    return rows


def _d2o(ev: ItemEvidence, options: ExportOptions) -> list[dict]:
    _, bad, source = _good_bad(ev, options)
    if not bad:
        raise Skip("no_negative")
    prompt = _prompt(ev, options)
    return [
        {"item_id": ev.item_id, "response_id": rid, "prompt": prompt,
         "rejected": _completion(ev.responses[rid][1], options), "label_source": source}
        for rid in bad
    ]


# Aegis 2.0 *data* spellings where they differ from the card's display names (the preset's
# canonical names); the preset lists the data spelling as the first alias of those four categories.
AEGIS_DATA_SPELLING = {c.name: c.aliases[0] for c in AEGIS_2.categories if c.aliases}
AEGIS_ASSUMED = "assumed"  # a label the importer assumed (the row had none), not a human's

_AEGIS_SOURCE = {"human": "human", "adjudication": "human", "jury": "llm_jury"}


def _aegis_sources(ev: ItemEvidence, *, response_id: int | None) -> str:
    """``prompt_label_source`` (``response_id`` None) or ``response_label_source`` of one row, in the
    Aegis 2.0 vocabulary: ``human`` (Tribunal's humans and adjudications), ``llm_jury`` (the jury);
    an imported label keeps what its Aegis row said (``human``, ``llm_jury``,
    ``refusal_data_augmentation``); a label the importer assumed (the shared subset has no response
    label) is ``assumed``; other imported labels are ``human``. Several kinds are joined with ``+``."""
    upstream = ev.metadata.get("aegis") if isinstance(ev.metadata.get("aegis"), dict) else None
    kinds = set()
    for r in ev.safety_records:
        if response_id is None and not r.prompt_label:
            continue
        if response_id is not None and response_id not in r.response_labels:
            continue
        if r.source != "import":
            kinds.add(_AEGIS_SOURCE.get(r.source, r.source))
        elif upstream is None:
            kinds.add("human")
        elif response_id is None:
            # the card: prompt labels are always human (the majority of the annotators' votes)
            kinds.add(str(upstream.get("prompt_label_source") or "human"))
        elif upstream.get("response_label") in (None, ""):
            kinds.add(AEGIS_ASSUMED)
        else:
            kinds.add(str(upstream.get("response_label_source") or "human"))
    return "+".join(sorted(kinds))


def aegis_prompt(messages: list[dict]) -> str:
    """The Aegis ``prompt`` text: a single message is its text (as in Aegis 2.0); a conversation
    keeps every turn, one ``role: text`` block per message separated by a blank line (the role
    words of the Aegis guard prompt's conversation, ``user: ...``)."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _aegis(ev: ItemEvidence, tax: TaxonomyContext) -> list[dict]:
    p = ev.prompt_safety
    if p is None:
        raise Skip("no_prompt_label")
    if p.label is None:
        raise Skip("tie")
    upstream_id = ev.metadata.get("aegis_id")
    prompt_source = _aegis_sources(ev, response_id=None)

    def spelled(code: str) -> str:
        name = tax.names.get(code, code)
        return AEGIS_DATA_SPELLING.get(name, name)

    def row(rid: int | None, r_label: str | None, r_cats: tuple[str, ...]) -> dict:
        codes = list(dict.fromkeys([*p.categories, *r_cats]))
        return {
            "id": str(upstream_id) if upstream_id not in (None, "") else str(ev.item_id),
            "reconstruction_id_if_redacted": None,
            "prompt": aegis_prompt(ev.prompt),
            "response": ev.responses[rid][1] if rid is not None else None,
            "prompt_label": p.label,
            "response_label": r_label,
            "violated_categories": ", ".join(spelled(c) for c in codes),
            "prompt_label_source": prompt_source,
            "response_label_source": _aegis_sources(ev, response_id=rid) if rid is not None and r_label else None,
            "item_id": ev.item_id,
        }

    labelled = [(rid, c) for rid, c in ev.response_safety.items() if c.label is not None]
    if not labelled:
        return [row(None, None, ())]
    labelled.sort(key=lambda rc: ev.responses[rc[0]][0])
    return [row(rid, c.label, c.categories) for rid, c in labelled]


def _needs_caution_code(tax: TaxonomyContext) -> str | None:
    """The taxonomy's own "Needs Caution" category, if it has one (Aegis 2.0: S13)."""
    for code in tax.codes:
        if " ".join(tax.names[code].casefold().split()) == "needs caution":
            return code
    return None


def llamaguard_target(consensus: SafetyConsensus, tax: TaxonomyContext) -> str | None:
    """``safe``, or ``unsafe`` and a second line of codes; None when there is no code to give.

    Llama Guard never answers ``unsafe`` without codes. Needs caution under each policy:
    ``permissive`` maps it to ``safe`` (consensus did that already); ``defensive`` maps it to
    ``unsafe``, and when no voter named a category its code is the taxonomy's own Needs Caution
    category (Aegis 2.0: S13) if it has one. Otherwise (a taxonomy without one, such as Llama
    Guard 3's, or an unsafe majority whose categories no half of the voters shared) the row is left
    out and counted as ``unsafe_without_categories``."""
    if consensus.label == "safe":
        return "safe"
    codes = consensus.categories
    if not codes and consensus.counts.get("needs_caution"):
        nc = _needs_caution_code(tax)
        codes = (nc,) if nc else ()
    return "unsafe\n" + ",".join(codes) if codes else None


def _llamaguard(ev: ItemEvidence, options: ExportOptions, tax: TaxonomyContext) -> list[dict]:
    turns = [("Agent" if m["role"] == "assistant" else "User", m["content"]) for m in ev.prompt]
    categories = [(code, tax.names[code]) for code in tax.codes]
    conversational = options.style == "conversational"

    def row(response_id: int | None, role: str, conversation: list[tuple[str, str]], target: str) -> dict:
        if conversational:  # TRL conversational prompt-completion: the model's own chat template wraps it
            prompt: str | list[dict] = [{"role": "user", "content": llamaguard3_instruction(categories, conversation, role)}]
            completion: str | list[dict] = [{"role": "assistant", "content": target}]
        else:
            prompt, completion = llamaguard3_prompt(categories, conversation, role), target
        return {"item_id": ev.item_id, "response_id": response_id, "role": role, "prompt": prompt,
                "completion": completion, "label_source": ev.safety_source}

    rows = []
    skipped = False
    p = ev.prompt_safety
    if p is not None and p.label is not None:
        target = llamaguard_target(p, tax)
        if target is None:
            skipped = True
        else:
            rows.append(row(None, "User", turns, target))
    labelled = sorted(
        ((rid, c) for rid, c in ev.response_safety.items() if c.label is not None), key=lambda rc: ev.responses[rc[0]][0]
    )
    for rid, c in labelled:
        target = llamaguard_target(c, tax)
        if target is None:
            skipped = True
            continue
        rows.append(row(rid, "Agent", [*turns, ("Agent", ev.responses[rid][1])], target))
    if not rows:
        raise Skip("unsafe_without_categories" if skipped else "no_prompt_label" if p is None else "tie")
    return rows


# --- Arrow schemas (explicit, so every chunk and every run writes the same types) ---------------

_MSG = pa.struct([("role", pa.string()), ("content", pa.string())])
_MSGS = pa.list_(_MSG)


def schema_for(options: ExportOptions) -> pa.Schema:
    conv = options.style == "conversational"
    prompt_t = _MSGS if conv else pa.string()
    completion_t = _MSGS if conv else pa.string()
    fmt = options.format
    if fmt == "dpo":
        cols = [("item_id", pa.int64()), ("prompt", prompt_t), ("chosen", completion_t), ("rejected", completion_t)]
        if options.include_margin:
            cols.append(("margin", pa.float64()))
        cols += [("chosen_id", pa.int64()), ("rejected_id", pa.int64()), ("label_source", pa.string())]
    elif fmt == "pro" and options.pro_layout == "pro":
        cols = [
            ("item_id", pa.int64()),
            ("meta", pa.struct([("item_id", pa.int64()), ("external_id", pa.string()), ("method", pa.string()),
                                ("label_source", pa.string())])),
            ("prefix", pa.list_(pa.list_(pa.string()))),
            ("suffix", pa.list_(pa.string())),
            ("reward", pa.list_(pa.float64())),
            ("sft_index", pa.int64()),
            ("response_ids", pa.list_(pa.int64())),
            ("label_source", pa.string()),
        ]
    elif fmt == "pro":
        cols = [
            ("item_id", pa.int64()), ("prompt", prompt_t),
            ("responses", pa.list_(_MSGS) if conv else pa.list_(pa.string())),
            ("scores", pa.list_(pa.float64())), ("ranks", pa.list_(pa.int64())),
            ("response_ids", pa.list_(pa.int64())), ("label_source", pa.string()),
        ]
    elif fmt == "sft":
        cols = [("item_id", pa.int64()), ("response_id", pa.int64()), ("prompt", prompt_t),
                ("completion", completion_t), ("label_source", pa.string())]
    elif fmt == "kto":
        cols = [("item_id", pa.int64()), ("response_id", pa.int64()), ("prompt", prompt_t),
                ("completion", completion_t), ("label", pa.bool_()), ("label_source", pa.string())]
    elif fmt == "d2o":
        cols = [("item_id", pa.int64()), ("response_id", pa.int64()), ("prompt", prompt_t),
                ("rejected", completion_t), ("label_source", pa.string())]
    elif fmt == "guard-aegis":
        cols = [(name, pa.string()) for name in AEGIS_COLUMNS] + [("item_id", pa.int64())]
    else:
        cols = [("item_id", pa.int64()), ("response_id", pa.int64()), ("role", pa.string()),
                ("prompt", prompt_t), ("completion", completion_t), ("label_source", pa.string())]
    return pa.schema(cols)
