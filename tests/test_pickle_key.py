"""Pickles are signed by default: with no $SCOUT_PERSIST_HMAC_KEY, with the account's own key, made on first use.

A key that is there but cannot be used (a short variable; a key file that is a folder, empty, short, unreadable, too
open, someone else's, or that cannot be made) is a PickleKeyError whenever a pickle is written or read: a planted
pickle is never unpickled, in any of these states.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys

import pytest

from scout_persist import pickle_envelope, pickle_key
from scout_persist.errors import PickleKeyError, UntrustedPayloadError
from scout_persist.info import dumps_info
from scout_persist.job import Job, JobWriter
from scout_persist.persist_cache import locate, persist
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
    data, record = pickle_envelope.dump_pickle_with_record({"x": 1}, "none")
    assert record["hmac"] is True and pickle_envelope.load_pickle(data, "job") == {"x": 1}
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
        data, record = pickle_envelope.dump_pickle_with_record(Planted(str(marker)), "none", hmac_key=signer, bind=key)
        info = Job.at(store, key).info
        info["payload"] = {"format": "pickle", **{k: v for k, v in record.items() if k != "serializer"}}
        store.put(key, data)
        store.put(key + ".info", dumps_info(info))
        with pytest.raises(UntrustedPayloadError) as err:
            Job.at(store, key).load()
        assert "refusing to unpickle" in str(err.value) and not marker.exists()


TEAM_KEY = "a team key of 32 bytes or more, ok"


def test_the_variable_overrides_the_file(key_file, monkeypatch):
    signed_by_file = pickle_envelope.dump_pickle({"x": 1})
    monkeypatch.setenv(pickle_key.HMAC_ENV, TEAM_KEY)
    assert pickle_key.current() == TEAM_KEY.encode() and pickle_key.source() == "$SCOUT_PERSIST_HMAC_KEY"
    with pytest.raises(UntrustedPayloadError, match="does not verify"):
        pickle_envelope.load_pickle(signed_by_file, "job")
    monkeypatch.setenv(pickle_key.HMAC_ENV, "")  # empty is unset: the key file again
    assert pickle_envelope.load_pickle(signed_by_file, "job") == {"x": 1}


def test_a_key_file_made_elsewhere_that_is_private_and_long_enough_is_used(key_file):
    key_file.parent.mkdir(parents=True)
    key_file.write_text("k" * pickle_key.MIN_KEY_BYTES + "\n")
    key_file.chmod(0o600)
    assert pickle_key.current() == b"k" * pickle_key.MIN_KEY_BYTES


def test_a_key_file_fixed_after_an_error_is_used_at_once(key_file):
    key_file.parent.mkdir(parents=True)
    key_file.write_text(secrets.token_hex(32))
    key_file.chmod(0o644)
    with pytest.raises(PickleKeyError, match="permissions 0644"):
        pickle_key.current()
    key_file.chmod(0o600)
    assert pickle_key.current() == key_file.read_bytes()
    key_file.chmod(0o640)  # judged again at every use, also once it was read
    with pytest.raises(PickleKeyError, match="permissions 0640"):
        pickle_key.current()


# -- every key that is there but cannot be used ---------------------------------------------------------------------
def _good_key(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n")
    path.chmod(0o600)


def _too_open(mode: int):
    def make(path, monkeypatch):
        _good_key(path)
        path.chmod(mode)
        return str(path), [f"permissions {mode:04o} for the pickle key file {path} are too open", f"chmod 600 {path}"]

    return make


def _folder(path, monkeypatch):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()
    return str(path), [f"the pickle key file {path} is a folder", "KEY_FILE"]


def _holding(text: str):
    def make(path, monkeypatch):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)
        return str(path), [f"the pickle key file {path} holds {len(text.strip())} bytes", "at least 32", "remove it"]

    return make


def _unreadable(path, monkeypatch):
    if os.geteuid() == 0:
        pytest.skip("root reads a file of mode 0000; the symlink-loop case covers an unreadable key file for root")
    _good_key(path)
    path.chmod(0o000)
    return str(path), [f"the pickle key file {path} cannot be read", "Permission denied"]


def _symlink_loop(path, monkeypatch):  # cannot be opened by anyone, root included
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path)
    return str(path), [f"the pickle key file {path} cannot be read", "symbolic links"]


def _parent_not_creatable(path, monkeypatch):
    blocker = path.parent.parent / "a-file-not-a-folder"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("")
    target = blocker / "pickle.key"
    monkeypatch.setenv(pickle_key.KEY_FILE_ENV, str(target))
    return str(target), [f"the key file {target} does not exist and cannot be made", pickle_key.KEY_FILE_ENV]


def _someone_elses(path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another account (the rule is the owner check of check_private)")
    _good_key(path)
    os.chown(path, 65534, 65534)
    return str(path), [f"the pickle key file {path} is owned by uid 65534, not by this account (uid 0)"]


def _short_variable(path, monkeypatch):
    monkeypatch.setenv(pickle_key.HMAC_ENV, "team key")
    return "$SCOUT_PERSIST_HMAC_KEY", ["$SCOUT_PERSIST_HMAC_KEY holds 8 bytes", "at least 32", "token_hex"]


BROKEN = {
    "folder": _folder,
    "empty": _holding(""),
    "too short": _holding("short\n"),
    "31 bytes": _holding("k" * 31),
    "unreadable": _unreadable,
    "symlink loop": _symlink_loop,
    "parent not creatable": _parent_not_creatable,
    "0644": _too_open(0o644),
    "0640": _too_open(0o640),
    "0604": _too_open(0o604),
    "0620 (others may write it)": _too_open(0o620),
    "owned by another account": _someone_elses,
    "short $SCOUT_PERSIST_HMAC_KEY": _short_variable,
}


@pytest.fixture(params=list(BROKEN), ids=list(BROKEN))
def broken_key(request, key_file, monkeypatch):
    """``(what, message fragments)`` once the key is broken as the parameter says (after a good key signed a job)."""
    return request.param, BROKEN[request.param]


def test_a_key_that_cannot_be_used_is_an_error_on_write_and_on_read(broken_key, key_file, monkeypatch):
    signed = pickle_envelope.dump_pickle({"x": 1})  # by the good key made on first use
    _, make = broken_key
    key_file.unlink()
    named, fragments = make(key_file, monkeypatch)
    for attempt in (lambda: pickle_envelope.dump_pickle({"x": 1}), lambda: pickle_envelope.load_pickle(signed, "job")):
        with pytest.raises(PickleKeyError) as err:
            attempt()
        assert isinstance(err.value, PermissionError) and named in str(err.value)
        for fragment in fragments:
            assert fragment in str(err.value)
    assert named in pickle_key.source() or pickle_key.source() == named  # messages can always name the source


def test_a_planted_pickle_never_runs_while_the_key_cannot_be_used(broken_key, key_file, tmp_path, monkeypatch):
    """Job.load and persist() refuse to unpickle anything, unsigned or signed with another key, in every state."""
    store = Store(str(tmp_path / "store"))
    job_key = "var/jobs/W/t/Default"
    JobWriter(store, job_key).run(lambda: {"rows": [1, 2]})  # signed by the good key made on first use
    loc = locate("planted entry", store=store)
    persist("planted entry", "pickle", lambda: {"rows": [3]}, store=store)
    _, make = broken_key
    key_file.unlink()
    make(key_file, monkeypatch)
    marker = tmp_path / "pwned"
    for signer in (b"", b"the attacker's own key, long enough!"):
        data, record = pickle_envelope.dump_pickle_with_record(
            Planted(str(marker)), "none", hmac_key=signer, bind=job_key
        )
        info = Job.at(store, job_key).info
        info["payload"] = {"format": "pickle", **{k: v for k, v in record.items() if k != "serializer"}}
        store.put(job_key, data)
        store.put(job_key + ".info", dumps_info(info))
        with pytest.raises(PickleKeyError):
            Job.at(store, job_key).load()
        store.put(loc.key, pickle_envelope.dump_pickle(Planted(str(marker)), hmac_key=signer, bind=loc.key))
        with pytest.raises(PickleKeyError):
            persist("planted entry", "pickle", lambda: {"rows": [3]}, store=store)
        assert not marker.exists()
