"""Pickles are signed by default: with no $SCOUT_PERSIST_HMAC_KEY, with the account's own key, made on first use."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

import pytest

from scout_persist import pickle_key, serializers
from scout_persist.errors import UntrustedPayloadError
from scout_persist.info import dumps_info
from scout_persist.job import Job, JobWriter
from scout_persist.store import Store


class Planted:
    """What an attacker with write access to the store plants: unpickling it creates ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    path = tmp_path / "config" / "pickle.key"
    monkeypatch.delenv(pickle_key.HMAC_ENV, raising=False)
    monkeypatch.setenv(pickle_key.KEY_FILE_ENV, str(path))
    return path


def test_the_accounts_key_is_made_once_private_and_signs_every_pickle(key_file):
    data, record = serializers.dump_pickle_with_record({"x": 1}, "none")
    assert record["hmac"] is True and serializers.load_pickle(data, "job") == {"x": 1}
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes().strip()) == 64
    assert pickle_key.current() == key_file.read_bytes().strip()
    assert "key file" in pickle_key.source() and str(key_file) in pickle_key.source()


def test_processes_racing_to_make_the_key_all_get_the_one_published(key_file):
    code = "from scout_persist import pickle_key; print(pickle_key.current().decode())"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert keys == {key_file.read_text().strip()}
    assert [p.name for p in key_file.parent.iterdir()] == ["pickle.key"]  # no temporary file left behind


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_planted_pickle_is_refused_before_it_runs(key_file, tmp_path, backend, request):
    store = Store(str(tmp_path / "store") if backend == "local" else request.getfixturevalue("s3_url"))
    key = "var/jobs/W/t/Default"
    JobWriter(store, key).run(lambda: {"rows": [1, 2]})
    marker = tmp_path / "pwned"
    for signer in (b"", b"the attacker's own key"):  # unsigned, or signed with a key that is not ours
        data, record = serializers.dump_pickle_with_record(Planted(str(marker)), "none", hmac_key=signer, bind=key)
        info = Job.at(store, key).info
        info["payload"] = {"format": "pickle", **{k: v for k, v in record.items() if k != "serializer"}}
        store.put(key, data)
        store.put(key + ".info", dumps_info(info))
        with pytest.raises(UntrustedPayloadError) as err:
            Job.at(store, key).load()
        assert "refusing to unpickle" in str(err.value) and not marker.exists()


def test_the_variable_overrides_the_file_and_a_missing_home_means_unsigned(key_file, tmp_path, monkeypatch, caplog):
    signed_by_file = serializers.dump_pickle({"x": 1})
    monkeypatch.setenv(pickle_key.HMAC_ENV, "team key")
    assert pickle_key.current() == b"team key" and pickle_key.source() == "$SCOUT_PERSIST_HMAC_KEY"
    with pytest.raises(UntrustedPayloadError, match="does not verify"):
        serializers.load_pickle(signed_by_file, "job")
    monkeypatch.delenv(pickle_key.HMAC_ENV)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv(pickle_key.KEY_FILE_ENV, str(blocker / "pickle.key"))
    with caplog.at_level(logging.WARNING, logger="scout_persist.pickle_key"):
        assert pickle_key.current() is None
    assert "unsigned" in caplog.text and pickle_key.KEY_FILE_ENV in caplog.text and str(blocker) in caplog.text
    unsigned, record = serializers.dump_pickle_with_record({"y": 2}, "none")
    assert record["hmac"] is False and serializers.load_pickle(unsigned, "job") == {"y": 2}


def test_a_short_key_file_is_not_a_key(key_file, caplog):
    key_file.parent.mkdir(parents=True)
    key_file.write_text("short\n")
    with caplog.at_level(logging.WARNING, logger="scout_persist.pickle_key"):
        assert pickle_key.current() is None
    assert "fewer than a key" in caplog.text and "delete it" in caplog.text
    os.unlink(key_file)
