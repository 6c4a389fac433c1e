"""Issue 13 point 6: honest progress in the workbench. What is left for this person, the project's
judgments against its overlap, items named by their place in the project (never the database id),
lease times as <time> elements that a static script turns into local time."""
from __future__ import annotations

import re
from datetime import UTC

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Assignment, Item
from annotation.workbench import selectors
from annotation.workbench import services as wb
from tests.annotation.workbench_fixtures import full_judgment, make_annotators, make_items

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _text(html: str, testid: str) -> str:
    m = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(?:span|h2|strong)>', html, re.S)
    assert m, testid
    return _flat(m[1])


def _flat(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def _submit_current(project, user) -> Assignment:
    a = wb.queue_next(project=project, annotator=user)
    assert a is not None
    wb.annotation_submit(project=project, annotator=user, item_id=a.item_id, judgment=full_judgment(project, a.shown_order))
    return a


def test_an_annotator_who_finished_their_queue_sees_nothing_left_and_the_judgments_received(project, annotator, tmp_path):
    # given: 3 items, overlap 2 (the project fixture), and this annotator answered all three
    assert project.overlap == 2
    make_items(project, tmp_path, 3)
    for _ in range(3):
        _submit_current(project, annotator)
    # when
    html = _client(annotator).get(reverse("workbench", args=[project.slug])).content.decode()
    # then: no item is complete (each has 1 of 2 judgments), but the page does not pretend nothing happened
    assert 'data-testid="queue-empty"' in html
    assert _text(html, "left-for-me") == "0"
    project_line = _flat(html.split('data-testid="project-progress">')[1].split("</progress>")[0])
    assert "3 of 6 judgments" in project_line and "3 items × 2" in project_line and "0 complete" in project_line
    assert 'value="50"' in html  # the bar follows the judgments
    assert "items complete" not in html


def test_what_is_left_counts_the_held_item_and_skips_items_that_are_full(project, annotator, tmp_path):
    # given: 4 items; two other annotators filled item 1 (overlap 2); this one holds a lease on another
    make_items(project, tmp_path, 4)
    others = make_annotators(project, 2)
    first = _submit_current(project, others[0])
    second = _submit_current(project, others[1])
    assert first.item_id == second.item_id
    held = wb.queue_next(project=project, annotator=annotator)
    # when
    p = selectors.progress(project, annotator)
    # then: 3 left for this annotator (the held one and two open ones; the full item is not theirs to get)
    assert held is not None and held.item_id != first.item_id
    assert (p.left_for_me, p.items_total, p.mine_done) == (3, 4, 0)
    assert (p.judgments_done, p.judgments_wanted, p.items_complete, p.project_percent) == (2, 8, 1, 25)
    # and after a skip that item is no longer theirs to get
    wb.assignment_skip(project=project, annotator=annotator, item_id=held.item_id, reason="unsure", note="")
    assert selectors.progress(project, annotator).left_for_me == 2


def test_items_are_titled_by_their_place_in_the_project_not_their_database_id(project, annotator, tmp_path):
    # given: another project's items first, so database ids run ahead of positions
    from annotation.models import Project

    other = Project.objects.create(
        name="Other", slug="other-progress", mode=project.mode, taxonomy_version=project.taxonomy_version, overlap=1,
    )
    make_items(other, tmp_path, 5, prefix="o")
    items = make_items(project, tmp_path, 3)
    c = _client(annotator)
    # when
    html = c.get(reverse("workbench", args=[project.slug])).content.decode()
    a = Assignment.objects.get(annotator=annotator, status="active")
    position = [i.pk for i in items].index(a.item_id) + 1
    # then: "Item <position> of 3 · <external id>", and the database id appears nowhere as a title
    assert a.item_id > 3
    assert _text(html, "item-title") == f"Item {position} of 3 · {Item.objects.get(pk=a.item_id).external_id}"
    assert f"Item {a.item_id}" not in html
    # and the flash after submitting names the same place
    data = {"item": a.item_id, "idempotency_key": "k1", "confidence": "3", "rationale": "ok"}
    for n, rid in enumerate(a.shown_order):
        data[f"rank-{rid}"] = str(n + 1)
        data[f"label-{rid}"] = "safe"
    done = c.post(reverse("workbench-submit", args=[project.slug]), data, HTTP_HX_REQUEST="true").content.decode()
    assert f"Item {position} saved" in done
    assert f"Undo my last submission (item {position})" in done


def test_lease_times_are_time_elements_with_an_iso_datetime_and_a_utc_fallback(project, annotator, tmp_path):
    make_items(project, tmp_path, 1)
    html = _client(annotator).get(reverse("workbench", args=[project.slug])).content.decode()
    a = Assignment.objects.get(annotator=annotator, status="active")
    m = re.search(r'<time datetime="([^"]+)" data-local-time[^>]*>([^<]+)</time>', html)
    assert m, "no <time> for the lease"
    from datetime import datetime

    assert datetime.fromisoformat(m[1]) == a.expires_at.replace(microsecond=0) or datetime.fromisoformat(m[1]) == a.expires_at
    assert m[2] == a.expires_at.astimezone(UTC).strftime("%H:%M UTC")
    assert "js/localtime.js" in html
