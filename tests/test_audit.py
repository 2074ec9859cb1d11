"""Audit mode's core: which hits are audited, how a fresh value is compared, how a finding is noted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scout_persist import audit
from scout_persist.info import dumps_info
from scout_persist.signature import dependency_token
from scout_persist.store import Store


def test_selection_is_a_fraction_and_the_same_on_every_rerun():
    keys = [f"var/jobs/W/t/{i}" for i in range(4000)]
    chosen = [k for k in keys if audit.selected(0.25, k, "run-1")]
    assert 800 < len(chosen) < 1200
    assert chosen == [k for k in keys if audit.selected(0.25, k, "run-1")]
    assert chosen != [k for k in keys if audit.selected(0.25, k, "run-2")]
    assert not any(audit.selected(0, k) for k in keys) and all(audit.selected(1, k) for k in keys)


def test_a_fresh_value_is_compared_as_a_store_of_it_hands_it_on():
    stored = np.arange(6.0).reshape(2, 3)  # what a hit hands on: a C-ordered array
    strided = np.arange(12.0).reshape(2, 6)[:, ::2] / 2  # equal values in a strided view: stored as C, equal
    assert audit.compare(stored, strided, scout_type=None, format=None, key="k") is None
    assert audit.compare(stored, stored + 1, scout_type=None, format=None, key="k") is not None
    assert audit.compare(1.0, -0.0 + 1.0, scout_type="float", format=None, key="k") is None
    assert "cannot be stored" in audit.compare("x", object(), scout_type="string", format=None, key="k")


@pytest.mark.parametrize("url", ["local", "memory://audit-note"])
def test_a_finding_is_noted_only_on_the_job_that_was_audited(url, tmp_path):
    store = Store(str(tmp_path) if url == "local" else url)
    key = "var/jobs/W/t/job"
    info = {"status": "done", "payload": {"format": "scout", "type": "json", "checksum": "sha256:aa"}}
    store.put(key + ".info", dumps_info(info))
    token = dependency_token(key, info)
    finding = audit.Finding(key, "W#t", "value: 1 != 2")
    assert audit.note(store, key, token, finding)
    noted = json.loads(store.get(key + ".info"))
    assert noted["audit"]["mismatch"] == "value: 1 != 2" and noted["status"] == "done"
    other = {**info, "payload": {**info["payload"], "checksum": "sha256:bb"}}
    store.put(key + ".info", dumps_info(other))  # rewritten since the audit
    assert not audit.note(store, key, token, finding)
    assert "audit" not in json.loads(store.get(key + ".info"))
