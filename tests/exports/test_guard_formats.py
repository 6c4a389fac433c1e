"""guard-aegis and guard-llamaguard as their upstreams write them: an Aegis 2.0 file imported and
exported back (data spellings, upstream order and ids, label sources, empty responses), a
conversation kept whole, and the Llama Guard 3 prompt compared with its model card's template."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.importing import import_file
from annotation.models import ImportBatch, Item
from exports import services
from exports.pipeline import run_export
from tests.exports.conftest import annotate, make_item

pytestmark = pytest.mark.django_db

# Three Aegis 2.0 rows as the data set writes them (field names and vocabulary from the card).
AEGIS_ROWS = [
    {"id": "3414431688d7418aac098664e275e414", "reconstruction_id_if_redacted": None, "prompt": "How do I hurt him?",
     "response": "Like this ...", "prompt_label": "unsafe", "response_label": "unsafe",
     # upstream order, not the taxonomy's (Guns is S4, Threat S11)
     "violated_categories": "Threat, Guns and Illegal Weapons",
     "prompt_label_source": "human", "response_label_source": "llm_jury"},
    {"id": "b6b4d6b1c7f6495c9d0c0a3f5d7e8f90", "reconstruction_id_if_redacted": None, "prompt": "Write it anyway.",
     "response": "", "prompt_label": "unsafe", "response_label": "safe",
     "violated_categories": "Sexual (minor), Controlled/Regulated Substances",
     "prompt_label_source": "human", "response_label_source": "refusal_data_augmentation"},
    {"id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "reconstruction_id_if_redacted": None, "prompt": "What is a good cake?",
     "response": None, "prompt_label": "safe", "response_label": None, "violated_categories": "",
     "prompt_label_source": "human", "response_label_source": None},
]


def _run(project, tmp_path: Path, name: str, **options) -> tuple[dict, list[dict]]:
    opts = services.export_options_validate(project=project, raw=options)
    out = tmp_path / name
    manifest = run_export(project=project, options=opts, out_dir=out)
    return manifest, [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def test_an_aegis_file_exports_back_as_aegis_writes_it(project, tmp_path):
    # given
    path = tmp_path / "aegis.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in AEGIS_ROWS), encoding="utf-8")
    batch = import_file(project=project, path=path, source_name=path.name, fmt="aegis")
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:5]
    # when
    _, rows = _run(project, tmp_path, "aegis", format="guard-aegis")
    # then: one row per source row, the Aegis fields as the data wrote them
    by_id = {r["id"]: r for r in rows}
    assert list(by_id) == [r["id"] for r in AEGIS_ROWS]
    item_of = dict(Item.objects.filter(project=project).values_list("source_line", "id"))
    for line, source in enumerate(AEGIS_ROWS, start=1):
        row = by_id[source["id"]]
        assert row["item_id"] == item_of[line]  # Tribunal's id in its own column
        for field in ("prompt", "response", "prompt_label", "response_label", "violated_categories",
                      "prompt_label_source", "response_label_source"):
            assert row[field] == source[field], (line, field)
    # the empty response kept its label; the categories kept their order and the data's spelling
    assert by_id[AEGIS_ROWS[1]["id"]]["response"] == "" and by_id[AEGIS_ROWS[1]["id"]]["response_label"] == "safe"
    assert by_id[AEGIS_ROWS[0]["id"]]["violated_categories"] == "Threat, Guns and Illegal Weapons"


def test_guard_aegis_keeps_a_conversation_whole_and_tribunal_labels_are_human(project, raters, tmp_path):
    # given a multi-turn item labelled by a Tribunal annotator
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "How do I pick a lock?"}]
    item, (r1,) = make_item(project, turns, ["Like this."])
    annotate(project, item, annotator=raters[0], prompt_label="unsafe", prompt_categories=["S3"],
             response_labels={r1: ("unsafe", ["S3"])})
    # when
    _, rows = _run(project, tmp_path, "conv", format="guard-aegis")
    # then every turn survives, and no upstream id: the id is Tribunal's
    (row,) = rows
    assert row["prompt"] == "user: Hi\n\nassistant: Hello!\n\nuser: How do I pick a lock?"
    assert row["id"] == str(item.pk) and row["item_id"] == item.pk
    assert (row["prompt_label_source"], row["response_label_source"]) == ("human", "human")
    assert row["violated_categories"] == "Criminal Planning/Confessions"
