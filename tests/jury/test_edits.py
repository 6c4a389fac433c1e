"""Synthetic edits (issue 11): parsing and bounds on literals, runs through the services with the
fake editor (Celery eager), resume after a dead worker, cancel, and the consumers (queue, jury
runs, content hashes and import dedup). The real-model run is in test_edits_model.py."""
from __future__ import annotations

import os

import pytest

from annotation import services as annotation_services
from annotation.judgments import Judgment, ResponseLabel
from annotation.models import Annotation, Item, Response
from jury.edits import parsing
from jury.edits import services as edit_services
from jury.edits.models import Edit, EditRun, EditTemplate
from tests.jury.conftest import import_items

# --- parsing and bounds on literals ---------------------------------------------------------------------


def test_parse_reads_the_reference_markers_and_the_edit_list():
    raw = ('Numbered List of edits made: {Add "not"} ||| {Omit "boiling"}\n'
           "Hallucinated Response: Water does not boil at 100 C.")
    parsed = parsing.parse_edit_output(raw)
    assert (parsed.text, parsed.mode) == ("Water does not boil at 100 C.", "marker")
    assert parsed.operations == ['Add "not"', 'Omit "boiling"']


@pytest.mark.parametrize(("raw", "text", "mode"), [
    # the last marker wins (a model that repeats the template's format line first)
    ("Improved Response: <the edited response>\nImproved Response: Use a helmet.", "Use a helmet.", "marker"),
    ("**Edited Response:** \"Stay hydrated.\"", "Stay hydrated.", "marker"),
    ("improved response:\n\nLine one.\nLine two.", "Line one.\nLine two.", "marker"),
    ("Here you go:\n```\nCall a doctor.\n```\nHope this helps", "Call a doctor.", "fenced"),
    ("Edits made: 1. add x\n2. omit y\n\nThe fixed text.", "The fixed text.", "after-edits"),
    ("Sure, here is the edited response:\nDrink water.", "Drink water.", "whole"),
    ("Just the text.", "Just the text.", "whole"),
    ("   ", "", "empty"),
    ("Improved Response: <the edited response>", "", "empty"),
])
def test_parse_recovers_when_the_model_ignores_the_format(raw, text, mode):
    parsed = parsing.parse_edit_output(raw)
    assert (parsed.text, parsed.mode) == (text, mode)


def test_word_distance_on_literals():
    assert parsing.word_edit_distance("a b c d".split(), "a x c d".split()) == 1
    assert parsing.word_edit_distance("a b c".split(), "a c".split()) == 1
    assert parsing.word_edit_distance([], "a b".split()) == 2
    assert parsing.word_distance_ratio("a b c d", "a x c d e") == 0.5
    assert parsing.word_distance_ratio("", "") == 0.0
    assert parsing.extra_words("a b", "a b c d") == 2
    assert parsing.extra_words("a b c", "a") == 0


@pytest.mark.parametrize(("edited", "reason_start"), [
    ("one two three four five six seven eight nine ten", "changes nothing"),
    ("uno dos tres cuatro cinco seis siete ocho nueve diez", "rewrites nearly everything"),
    ("one two three four five six seven eight nine ten a b c", "adds 3 words"),
    ("one two three four five six seven eight nine eleven", ""),
])
def test_bounds_keep_or_discard_with_the_reason(edited, reason_start):
    source = "one two three four five six seven eight nine ten"
    bounds = parsing.Bounds(min_ratio=0.05, max_ratio=0.5, max_extra_words=2)
    ratio, reason = parsing.judge_edit(source, parsing.ParsedEdit(text=edited), bounds)
    assert reason.startswith(reason_start) if reason_start else reason == ""
    assert ratio == parsing.word_distance_ratio(source, edited)


def test_a_band_that_keeps_small_changes_only_discards_a_small_change_below_it():
    source = " ".join(f"w{i}" for i in range(100))
    edited = source.replace(" w5 ", " v5 ")  # ratio 0.01
    ratio, reason = parsing.judge_edit(source, parsing.ParsedEdit(text=edited), parsing.Bounds(min_ratio=0.02))
    assert ratio == pytest.approx(0.01) and reason.startswith("changes too little")


# --- templates --------------------------------------------------------------------------------------------


def test_templates_are_seeded_versioned_and_immutable(db, researcher):
    improve = edit_services.default_template("improve")
    assert improve.version == 1 and "{response}" in improve.text and "Improved Response:" in improve.text
    newer = edit_services.template_revise(template=improve, text=improve.text + "\nBe brief.", user=researcher)
    assert (newer.name, newer.version, newer.direction) == (improve.name, 2, "improve")
    assert edit_services.default_template("improve") == newer
    with pytest.raises(ValueError, match="Unknown template fields"):
        edit_services.template_revise(template=improve, text="{response} {secret}")
    improve.text = "changed"
    with pytest.raises(Exception, match="immutable"):
        improve.save()
    assert EditTemplate.objects.get(pk=improve.pk).text != "changed"


# --- runs ---------------------------------------------------------------------------------------------------


@pytest.fixture
def eager():
    from config.celery import app

    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


def fake_editor(model: str = "edit"):
    from jury import services

    return services.model_spec_create(name=f"fake-editor-{model}", backend="fake", model=model, batch_size=2,
                                      max_length=512)


ROWS = [
    ("How do I treat a burn?", ["Put butter on it and wait for a day or two.", "Cool it under running water."]),
    ("Is it safe to mix bleach and ammonia?", ["Yes, it cleans twice as well as either alone.", "No, never."]),
]


@pytest.fixture
def edit_items(project, tmp_path):
    return import_items(project, ROWS, tmp_path, prefix="e")


def annotate(project, annotator, item, rationale: str, unsafe_response: Response | None = None):
    responses = list(item.responses.judged().order_by("position"))
    labels = {r.pk: ResponseLabel("safe") for r in responses}
    if unsafe_response is not None:
        labels[unsafe_response.pk] = ResponseLabel("unsafe", ("S1",))
    return annotation_services.judgment_record(
        project=project, item_id=item.pk, source=Annotation.Source.HUMAN, annotator=annotator,
        judgment=Judgment(ranking=[[r.pk] for r in reversed(responses)], prompt_label="safe",
                          response_labels=labels, rationale=rationale),
        shown_order=[r.pk for r in responses],
    )


def start(capture, **kwargs) -> EditRun:
    with capture(execute=True):
        run = edit_services.edit_run_start(**kwargs)
    run.refresh_from_db()
    return run


def test_improve_run_edits_responses_with_feedback_and_creates_review_items(
    eager, django_capture_on_commit_callbacks, project, edit_items, annotator, researcher,
):
    burn = edit_items[0]
    butter = burn.responses.get(position=0)
    annotate(project, annotator, burn, "Butter traps heat; the advice is dangerous.", unsafe_response=butter)
    run = start(django_capture_on_commit_callbacks, project=project, editor=fake_editor(), direction="improve",
                user=researcher, options={"max_ratio": 0.9, "max_extra_words": 3})
    # improve without an instruction edits only responses with feedback: the burn item's two
    assert run.status == "done" and run.total == 2 and (run.kept_count, run.discarded_count) == (2, 0)
    edit = Edit.objects.get(run=run, source_response=butter)
    assert "dangerous" in edit.feedback["rationales"] and "Violence (S1)" in edit.feedback["categories"]
    assert edit.parse_mode == "marker" and edit.operations
    edited = edit.edited_response
    assert (edited.origin, edited.parent, edited.item) == ("edited", butter, burn)
    assert edited.text.startswith("Indeed, butter on it")
    assert edited.position == 2 + list(Edit.objects.filter(run=run).order_by("id")).index(edit)
    review = edit.review_item
    assert (review.kind, review.review_of, review.project, review.prompt) == ("edit_review", edited, project, burn.prompt)
    meta = review.metadata["edit"]
    assert meta["direction"] == "improve" and meta["editor"] == "fake-editor-edit" and meta["run"] == run.pk
    assert meta["template"] == {"name": "improve-default", "version": 1}
    assert "dangerous" in meta["feedback"] and meta["word_distance"] == edit.word_distance
    assert review.content_hash == annotation_services.edit_review_content_hash(edited.pk)


def test_corrupt_run_with_discards_recorded(eager, django_capture_on_commit_callbacks, project, edit_items):
    same = start(django_capture_on_commit_callbacks, project=project, editor=fake_editor("same"),
                 direction="corrupt", options={"limit": 3})
    assert same.total == 3 and same.kept_count == 0 and same.discarded_count == 3
    assert set(same.edits.values_list("discard_reason", flat=True)) == {
        "changes nothing: word distance 0.000 < minimum 0.010"}
    rewrite = start(django_capture_on_commit_callbacks, project=project, editor=fake_editor("rewrite"),
                    direction="corrupt", options={"max_ratio": 0.6, "max_extra_words": 10})
    assert rewrite.total == 4 and rewrite.discarded_count == 4
    assert all(r.startswith("rewrites nearly everything") for r in rewrite.edits.values_list("discard_reason", flat=True))
    empty = start(django_capture_on_commit_callbacks, project=project, editor=fake_editor("empty"),
                  direction="corrupt", options={"limit": 1})
    assert (empty.discarded_count, empty.failed_count) == (1, 1)
    chatter = start(django_capture_on_commit_callbacks, project=project, editor=fake_editor("chatter"),
                    direction="corrupt", options={"limit": 1, "max_ratio": 1.0, "max_extra_words": 5})
    assert chatter.kept_count == 1 and chatter.edits.get().parse_mode == "whole"
    assert not Response.objects.filter(origin="edited").exclude(synthetic_edit__run=chatter).exists()


def test_a_failing_editor_fails_the_run_with_the_error(eager, django_capture_on_commit_callbacks, project, edit_items):
    run = start(django_capture_on_commit_callbacks, project=project, editor=fake_editor("fail"), direction="corrupt")
    assert run.status == "failed" and "asked to fail" in run.error and run.processed == 0


def test_options_are_validated(db, project):
    with pytest.raises(ValueError, match="min_ratio < max_ratio"):
        edit_services.options_clean("improve", {"min_ratio": 0.5, "max_ratio": 0.2})
    with pytest.raises(ValueError, match="Unknown options"):
        edit_services.options_clean("improve", {"bogus": 1})
    with pytest.raises(ValueError, match="Unknown direction"):
        edit_services.options_clean("sideways", {})


def test_resume_after_a_dead_worker_finishes_without_duplicates(
    eager, django_capture_on_commit_callbacks, project, edit_items,
):
    with django_capture_on_commit_callbacks(execute=False):  # started, never delivered
        run = edit_services.edit_run_start(project=project, editor=fake_editor(), direction="corrupt",
                                           options={"batch_size": 1, "max_ratio": 1.0, "max_extra_words": 3})
    assert run.total == 4
    # a worker claimed it, edited one response and was killed: its pid is gone
    from annotation import jobs

    assert jobs.claim(model=EditRun, pk=run.pk)
    first = Response.objects.get(pk=run.options["response_ids"][0])
    edit_services.edit_record(run=run, response=first, feedback={}, raw="Edited Response: Indeed, a changed text here.")
    dead = 2 ** 22 + 12345
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
    import socket

    EditRun.objects.filter(pk=run.pk).update(claimed_by=f"{socket.gethostname()}:{dead}")
    with django_capture_on_commit_callbacks(execute=True):
        assert edit_services.edit_runs_resume_all() == [run.pk]
    run.refresh_from_db()
    assert run.status == "done" and run.processed == 4 and run.kept_count == 4
    assert Edit.objects.filter(run=run).count() == 4
    assert Response.objects.filter(origin="edited", synthetic_edit__run=run).count() == 4
    assert Item.objects.filter(kind="edit_review", synthetic_edit__run=run).count() == 4
    # a second delivery of the task changes nothing
    assert edit_services.edit_run_process(run_id=run.pk) == "skipped"
    # recording the same source again is refused quietly
    assert edit_services.edit_record(run=run, response=first, feedback={}, raw="Edited Response: other") is None
    assert Edit.objects.filter(run=run).count() == 4


def test_cancel_stops_a_run(django_capture_on_commit_callbacks, project, edit_items):
    with django_capture_on_commit_callbacks(execute=False):
        run = edit_services.edit_run_start(project=project, editor=fake_editor(), direction="corrupt")
    edit_services.edit_run_cancel(run=run)
    assert edit_services.edit_run_process(run_id=run.pk) == "skipped"
    run.refresh_from_db()
    assert run.status == "cancelled" and not run.edits.exists()
    with pytest.raises(ValueError, match="only pending or running"):
        edit_services.edit_run_cancel(run=run)


# --- consumers ----------------------------------------------------------------------------------------------


@pytest.fixture
def edited(eager, django_capture_on_commit_callbacks, project, edit_items):
    run = start(django_capture_on_commit_callbacks, project=project, editor=fake_editor(), direction="corrupt",
                options={"max_ratio": 1.0, "max_extra_words": 3})
    assert run.kept_count == 4
    return run


def test_queue_never_shows_edits_as_ordinary_responses(edited, project, annotator, edit_items):
    from annotation.models import Assignment
    from annotation.workbench import selectors as wb_selectors
    from annotation.workbench.services.queue import queue_next

    seen: set[int] = set()
    for _ in range(len(edit_items)):
        assignment = queue_next(project=project, annotator=annotator)
        if assignment is None or assignment.item.kind != "judge":
            break
        shown = wb_selectors.responses_in_order(assignment)
        assert {r.origin for r in shown} == {"imported"} and len(shown) == 2
        assert set(assignment.shown_order) == set(assignment.item.responses.judged().values_list("pk", flat=True))
        seen.add(assignment.item_id)
        Assignment.objects.filter(pk=assignment.pk).update(status="skipped")
    assert seen == {i.pk for i in edit_items}


def test_jury_runs_judge_edits_only_when_asked(edited, project, edit_items, django_capture_on_commit_callbacks):
    from jury import services as jury_services
    from jury.models import Verdict
    from tests.jury.conftest import fake_juror

    panel = jury_services.jury_create(name="edits-panel", jurors=[(fake_juror("fake-e"), 1.0)], rule="mean")
    with django_capture_on_commit_callbacks(execute=True):
        plain = jury_services.jury_run_start(project=project, jury=panel, task="safety")
    plain.refresh_from_db()
    assert plain.item_count == 2 and plain.verdicts_expected == 2 * (1 + 2)
    judged = set(Verdict.objects.filter(run=plain, response__isnull=False).values_list("response__origin", flat=True))
    assert judged == {"imported"}
    with django_capture_on_commit_callbacks(execute=True):
        asked = jury_services.jury_run_start(project=project, jury=panel, task="safety", include_edits=True)
    asked.refresh_from_db()
    assert asked.config["include_edits"] is True and asked.verdicts_expected == 2 * (1 + 4)
    judged = set(Verdict.objects.filter(run=asked, response__isnull=False).values_list("response__origin", flat=True))
    assert judged == {"imported", "edited"}


def test_hashes_and_import_dedup_ignore_edits(edited, project, edit_items, tmp_path):
    before = {i.pk: i.content_hash for i in edit_items}
    for item in Item.objects.filter(pk__in=before):
        assert item.content_hash == before[item.pk]  # an edit never rehashes its item
    review_hashes = set(Item.objects.filter(project=project, kind="edit_review").values_list("content_hash", flat=True))
    assert len(review_hashes) == 4 and not review_hashes & set(before.values())
    # importing the same file again stores nothing new: the items (with their edits) are the same content
    from annotation.importing import import_file

    path = tmp_path / "e-items.jsonl"
    batch = import_file(project=project, path=path, source_name="again.jsonl", background=False)
    assert batch.status == "done" and batch.items_created == 0 and batch.items_skipped == 2
    assert Item.objects.filter(project=project, kind="judge").count() == 2


# --- an OpenAI-compatible editor (a local HTTP server at the network edge) ---------------------------------


def test_openai_compatible_editor_batches_and_passes_seeds(
    eager, django_capture_on_commit_callbacks, project, edit_items,
):
    import re

    from jury import services as jury_services
    from tests.jury.openai_server import Server

    def generator(prompt: str, body: dict) -> str:
        found = re.search(r"\nResponse:\n(.*?)\n\n", prompt, re.DOTALL)
        assert found is not None, prompt
        words = found.group(1).split()
        return "Numbered List of edits made: {Omit x}\nHallucinated Response: " + " ".join(["Surely", *words[1:]])

    with Server(None, generator=generator, fail_first=1) as server:
        editor = jury_services.model_spec_create(name="endpoint-editor", backend="openai", model="served-model",
                                                 endpoint=server.url, batch_size=3, max_retries=2)
        run = start(django_capture_on_commit_callbacks, project=project, editor=editor, direction="corrupt",
                    options={"seed": 11, "batch_size": 3, "max_new_tokens": 64, "max_ratio": 1.0})
    assert run.status == "done", run.error
    assert (run.total, run.kept_count) == (4, 4)
    # one retried 503, then two batched requests (3 + 1 prompts), each with the run's seed
    generation = [b for b in server.bodies if not b.get("echo")]
    assert server.requests == 3 and [len(b["prompt"]) for b in generation] == [3, 1]
    assert {(b["seed"], b["max_tokens"], b["temperature"], b["model"]) for b in generation} == {(11, 64, 0.0, "served-model")}
    assert {e.edited_response.text.split()[0] for e in run.edits.all()} == {"Surely"}
