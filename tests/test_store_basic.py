"""Store key safety: nothing may escape the root."""

from __future__ import annotations

import pytest

from scout_persist.errors import KeyNotFound, UnsafePathError
from scout_persist.store import Store, check_key


@pytest.mark.parametrize("key", ["../x", "a/../../b", "/etc/passwd", "a\x00b"])
def test_unsafe_keys_are_refused_with_the_rule(key):
    with pytest.raises(UnsafePathError) as err:
        check_key(key, "/root")
    assert repr(key) in str(err.value)


def test_local_roundtrip_and_missing_key(tmp_path):
    store = Store(str(tmp_path / "root"))
    store.put("var/jobs/W/t/Default", b"hello")
    assert store.get("var/jobs/W/t/Default") == b"hello"
    assert list(store.list("var/jobs")) == ["var/jobs/W/t/Default"]
    with pytest.raises(KeyNotFound, match="nope"):
        store.get("nope")
    with pytest.raises(UnsafePathError):
        store.put("../outside", b"x")
    assert not (tmp_path / "outside").exists()
