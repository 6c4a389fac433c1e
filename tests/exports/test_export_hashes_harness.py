"""bench/export_hashes.py, the export-fidelity harness, stays usable: two runs on a small project and
a few combos give identical manifests, and ``--compare`` reports every difference.

Each run is its own process on its own fresh SQLite file (the harness owns its database, so this
test needs none of pytest-django's); the two runs take a few seconds in all.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "export_hashes.py"
ONLY = r"^(dpo|pro|sft|guard-aegis|guard-llamaguard|kto/signal=safety)$|^dpo/outputs=hf$|^dpo/chunk_size=3$" \
       r"|^dpo/seed=1/split=0.8,0.1,0.1$|^guard-aegis/source=jury-only$|^d2o/source=adjudicated-only$"


def _run(tmp_path: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(SECRET_KEY="harness-test", HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--items", "40", "--only", ONLY, "--quiet", "--out", str(tmp_path / name), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False,
    )


def _harness():
    spec = importlib.util.spec_from_file_location("export_hashes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_runs_give_identical_manifests(tmp_path):
    first = _run(tmp_path, "first.json")
    assert first.returncode == 0, first.stderr[-3000:]
    second = _run(tmp_path, "second.json", "--compare", str(tmp_path / "first.json"))
    assert second.returncode == 0, second.stderr[-3000:]
    a = json.loads((tmp_path / "first.json").read_text())
    b = json.loads((tmp_path / "second.json").read_text())
    assert a == b
    assert len(a) == 11
    # on 40 items no D2O row comes from adjudication alone: the job's error is what gets compared
    failed = {name for name, files in a.items() if "!failed" in files}
    assert failed <= {"d2o/source=adjudicated-only"}, failed
    assert {"train.jsonl", "train.parquet", "evidence.jsonl", "README.md", "manifest.json"} <= set(a["dpo"])
    assert any(name.startswith("hf/") for name in a["dpo/outputs=hf"])
    assert {"train.jsonl", "validation.jsonl", "test.jsonl"} <= set(a["dpo/seed=1/split=0.8,0.1,0.1"])


def test_compare_lists_every_difference():
    compare = _harness().compare
    old = {"dpo": {"train.jsonl": "1", "README.md": "2"}, "pro": {"train.jsonl": "3"}, "gone": {"a": "4"}}
    new = {"dpo": {"train.jsonl": "1", "README.md": "X", "hf/x.arrow": "5"}, "pro": {"!failed": "No rows"}, "new": {}}
    assert compare(old, new) == [
        "dpo: README.md differs",
        "dpo: hf/x.arrow only in this run",
        "gone: combo missing in this run",
        "new: combo not in the reference",
        "pro: !failed only in this run (None -> No rows)",
        "pro: train.jsonl only in the reference",
    ]
    assert compare(old, old) == []
