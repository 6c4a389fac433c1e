"""20+ annotators at once against a live server: nothing lost, nothing doubled. On PostgreSQL the
guarantee is its row locks; on SQLite (`make test-sqlite`) its single write lock, taken at BEGIN."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.annotation.workbench_fixtures import make_annotators, make_items

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

_spec = importlib.util.spec_from_file_location(
    "annotate_load", Path(__file__).resolve().parents[2] / "bench" / "annotate_load.py"
)
assert _spec is not None and _spec.loader is not None
load = importlib.util.module_from_spec(_spec)
sys.modules["annotate_load"] = load  # dataclasses look their module up while the class is built
_spec.loader.exec_module(load)


def test_twenty_annotators_with_overlap_two(live_server, project, tmp_path):
    # given: overlap 2, 40 items, 22 logged-in annotator sessions
    assert project.overlap == 2
    items = make_items(project, tmp_path, 40, responses=3)
    users = make_annotators(project, 22)
    # when: all of them take and submit items at once until the queue is empty (some submits twice)
    logs, wall = load.run_annotators(
        live_server.url, project.slug, [(u.username, f"pw-{u.username}") for u in users], retry_rate=0.2
    )
    # then
    assert load.integrity_problems(project, logs, expected_per_item=2) == []
    assert sum(len(log.acknowledged) for log in logs) == 2 * len(items)
    assert sum(log.replays for log in logs) > 0
    assert sum(1 for log in logs if log.acknowledged) >= 10  # the work really was spread out
