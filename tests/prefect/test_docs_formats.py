"""Every Python example of docs/formats.md runs as written (in order, each block on its own, against a fresh root)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_docs_formats_examples_run(scout_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _blocks()
    assert len(blocks) >= 9  # one per format, the flow, TSV, file outputs, the output cache
    for i, block in enumerate(blocks):
        namespace: dict = {"__name__": f"docs_formats_{i}"}
        exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)  # noqa: S102 - our own docs
    assert len(list((scout_root / "var/jobs/DocFiles/report").glob("*.files/tables/summary.tsv"))) == 1
