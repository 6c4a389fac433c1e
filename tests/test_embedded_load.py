"""The embedded default (`make run`: SQLite, filesystem broker, 2 gunicorn workers, a real worker)
under load: 5 annotators flat out through the workbench API while a background import (several
chunks) and an export run. No request may fail, and what is stored is exactly what was
acknowledged. The same harness at 20 annotators, side by side with PostgreSQL, is
``bench/embedded_load.py``."""
from __future__ import annotations

import pytest

from bench.embedded_load import Stack, run_load

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_five_annotators_flat_out_with_an_import_and_an_export_get_no_error_on_sqlite(tmp_path):
    # small import chunks, so the import's writes interleave with the annotators' many times
    stack = Stack(tmp_path / "var", env={"IMPORT_BATCH_SIZE": "500"})
    try:
        stack.start()
        result = run_load(stack, database="sqlite", annotators=5, items=150, import_items=5000)
    finally:
        stack.stop()
    assert result.problems == [], "\n".join(result.problems[:20])
    assert result.cycles == 300  # 150 items x overlap 2, every one acknowledged and stored
    assert result.import_s is not None and result.export_s is not None
