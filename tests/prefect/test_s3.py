"""The Baking flow with SCOUT_PERSIST_URL=s3://... on the moto endpoint leaves Ruby's job tree, then hits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scout_persist.store import Store
from scout_prefect_helpers import ran

RUBY_JOBS = Path(__file__).resolve().parents[1] / "data" / "ruby-scout" / "scout-jobs"


@pytest.mark.s3
def test_baking_on_s3(s3_url, body_log, baking_module, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_URL", s3_url)
    outs = [baking_module.baking("Normal muffin", None), baking_module.baking("Blueberry muffin", True)]
    again = [baking_module.baking("Normal muffin", None), baking_module.baking("Blueberry muffin", True)]
    assert [o["tray"] for o in outs] == [o["tray"] for o in again]
    assert len(ran(body_log)) == 6
    assert all(set(o["states"].values()) == {"Cached"} for o in again)
    store = Store(s3_url)
    results = [k for k in store.list("var/jobs") if not k.endswith(".info")]
    assert len(results) == 6
    for key in results:
        assert store.get(key) == (RUBY_JOBS / key).read_bytes(), key
        info = json.loads(store.get(key + ".info"))
        assert info["status"] == "done"
        assert all(d.startswith(s3_url + "/var/jobs/") for d in info["dependencies"])
    assert not [k for k in store.list("tmp/persist_locks") if k.endswith(".lock")]
