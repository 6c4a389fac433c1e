"""The pure decision functions (jury.services.decisions) on literal verdict rows: no database."""
from __future__ import annotations

import pytest

from jury.services.decisions import (
    VerdictRow,
    decide,
    escalation_priority,
    pair_choice,
    pair_votes,
    row_class,
)

CONFIG = {
    "jury": "panel", "rule": "mean", "threshold": 0.5, "caution_low": 0.35, "caution_high": 0.65,
    "category_threshold": 0.5, "min_confidence": 0.7, "escalate_on_split": True, "escalation_priority": 10,
    "jurors": [{"id": 1, "name": "j1", "weight": 1.0}, {"id": 2, "name": "j2", "weight": 3.0}],
    "principles": [[7, "P1", "Be honest"]], "taxonomy_version": 1,
}


def _safety(juror: int, target: str, p_unsafe: float, cats: dict | None = None) -> VerdictRow:
    probs = {"safe": 1 - p_unsafe, "unsafe": p_unsafe}
    return VerdictRow(juror_id=juror, target=target, order=0, label=max(probs, key=probs.__getitem__), probs=probs,
                      category_probs=cats or {})


def _pair(juror: int, order: int, p_shown_first: float, target: str = "i5:p10-11", consistent=True) -> VerdictRow:
    probs = {"A": p_shown_first, "B": 1 - p_shown_first}
    return VerdictRow(juror_id=juror, target=target, order=order, label="A" if p_shown_first >= 0.5 else "B",
                      probs=probs, position_consistent=consistent, response_id=10, response_b_id=11)


def test_safety_names_the_worst_label_and_the_likely_categories():
    # given two jurors who agree the prompt is safe and the second response is unsafe (violence)
    verdicts = [
        _safety(1, "i5:prompt", 0.05), _safety(2, "i5:prompt", 0.1),
        _safety(1, "i5:r10", 0.02), _safety(2, "i5:r10", 0.04),
        _safety(1, "i5:r11", 0.95, {"S1": 0.8, "S3": 0.15}), _safety(2, "i5:r11", 0.93, {"S1": 0.7, "S3": 0.23}),
    ]
    # when the panel decides
    decision = decide("safety", CONFIG, item_id=5, response_ids=[10, 11], verdicts=verdicts)
    # then the item is unsafe because of r11, with S1 named, and nothing escalates
    assert decision.label == "unsafe"
    judgment = decision.judgment
    assert judgment.prompt_label == "safe" and judgment.prompt_categories == []
    assert judgment.response_safety == [(10, "safe", []), (11, "unsafe", ["S1"])]
    assert judgment.with_taxonomy
    assert not decision.escalated and decision.priority is None and decision.reasons == []
    assert decision.confidence == pytest.approx(0.925)
    assert decision.details["targets"]["i5:r11"]["category_probs"] == {"S1": 0.75, "S3": 0.19}


def test_safety_split_escalates_with_a_priority_for_doubt():
    verdicts = [_safety(1, "i5:prompt", 0.9), _safety(2, "i5:prompt", 0.1)]
    decision = decide("safety", CONFIG, item_id=5, response_ids=[], verdicts=verdicts)
    assert decision.escalated
    assert decision.judgment.prompt_label == "needs_caution"
    assert decision.priority == 10 + round((1 - decision.confidence) * 10)
    assert any(r.startswith("i5:prompt: ") for r in decision.reasons)


def test_preference_averages_both_orders_into_a_canonical_choice():
    # juror 1 prefers response 10 in both orders; juror 2 too, less surely
    verdicts = [_pair(1, 0, 0.9), _pair(1, 1, 0.1), _pair(2, 0, 0.8), _pair(2, 1, 0.2)]
    decision = decide("preference", CONFIG, item_id=5, response_ids=[10, 11], verdicts=verdicts)
    assert decision.label == "10"
    assert decision.judgment.ranking == [[10], [11]]
    assert decision.judgment.pair == {"pair_a_id": 10, "pair_b_id": 11, "pair_choice": "a", "pair_strength": 3}
    assert decision.details["pairs"]["i5:p10-11"]["probs"] == {"a": 0.85, "b": 0.15}
    assert not decision.escalated


def test_a_pure_position_bias_cancels_into_a_tie():
    # the juror always picks whatever is shown first
    verdicts = [_pair(1, 0, 0.9, consistent=False), _pair(1, 1, 0.9, consistent=False)]
    config = CONFIG | {"jurors": [{"id": 1, "name": "biased", "weight": 1.0}]}
    decision = decide("preference", config, item_id=5, response_ids=[10, 11], verdicts=verdicts)
    assert decision.judgment.pair["pair_choice"] == "tie"
    assert decision.escalated and any("position-inconsistent: biased" in r for r in decision.reasons)


def test_principles_record_no_judgment_and_classify_the_row():
    rows = [VerdictRow(juror_id=1, target="i5:P1:p10-11", order=o, label="A", principle_id=7, response_id=10,
                       response_b_id=11, probs={"A": 0.7, "B": 0.2, "NA": 0.1} if o == 0 else {"A": 0.2, "B": 0.7, "NA": 0.1})
            for o in (0, 1)]
    decision = decide("principles", CONFIG, item_id=5, response_ids=[10, 11], verdicts=rows)
    assert decision.judgment is None
    values = decision.details["principles"]["P1"]["10-11"]
    assert values["prob_A"] == pytest.approx(0.7) and values["p"] == 1
    assert decision.label == "consensus"


def test_weighted_rule_uses_the_weights():
    verdicts = [_safety(1, "i5:prompt", 0.9), _safety(2, "i5:prompt", 0.1)]
    decision = decide("safety", CONFIG | {"rule": "weighted"}, item_id=5, response_ids=[], verdicts=verdicts)
    assert decision.details["targets"]["i5:prompt"]["probs"]["unsafe"] == pytest.approx((0.9 + 3 * 0.1) / 4)


def test_small_rules():
    assert pair_choice(0.5) == ("tie", 0) and pair_choice(0.2) == ("b", 2) and pair_choice(0.86) == ("a", 3)
    assert row_class([1, -1, None]) == "conflict" and row_class([None]) == "indifference"
    assert escalation_priority({"escalation_priority": 20}, 0.0) == 30
    (vote,) = pair_votes([_pair(1, 0, 0.6), _pair(1, 1, 0.6)], {1: 1.0}, {1: "j"}, ("A", "B"))
    assert vote.probs == pytest.approx({"a": 0.5, "b": 0.5})


@pytest.mark.parametrize("task", ["safety", "preference", "principles"])
def test_escalation_reasons_name_targets_as_the_adjudication_page_does(task):
    """The reason an escalated item carries to adjudication names the prompt and the responses by
    letter, whatever target keys jury.judging builds (no item or response ids)."""
    from jury import judging
    from jury.services.finalize import readable_reason

    ctx = judging.JudgeContext(task=task, prompt_version="v1", categories=[("S1", "Violence")],
                               principles=[(7, "P3", "Be honest.")])
    responses = [(840, "first"), (841, "second"), (842, "third")]
    targets = judging.build_targets(ctx, 9031, [{"role": "user", "content": "hi"}], responses)
    assert targets
    for t in targets:
        text = readable_reason(f"{t.key}: jurors disagree", [rid for rid, _ in responses])
        assert text.endswith(": jurors disagree") and "9031" not in text and "84" not in text, text
    expected = {"safety": "prompt: jurors disagree", "preference": "A vs B: jurors disagree",
                "principles": "P3, A vs B: jurors disagree"}[task]
    assert expected in {readable_reason(f"{t.key}: jurors disagree", [840, 841, 842]) for t in targets}
