"""Store roots are checked when a store opens (issue 17 item 1): ``store_url`` in scout_persist/store.py."""

from __future__ import annotations

import os

import pytest

from scout_persist.cli import main
from scout_persist.errors import InvalidInputError, StorageError
from scout_persist.store import Store, store_url

# value of SCOUT_PERSIST_URL -> (error class, words of the message besides the variable and the value)
BAD = {
    "s3://": (InvalidInputError, ["names no bucket", "s3://<bucket>[/<prefix>]"]),
    "s3://$UNSET_VAR/root": (InvalidInputError, ["'$UNSET_VAR'", "never expanded", "export that variable"]),
    "${SCOUT_BUCKET}/x": (InvalidInputError, ["'${SCOUT_BUCKET}'", "never expanded"]),
    "s3:/scout": (InvalidInputError, ["missing the '//' after 's3:'", "write s3://scout"]),
    "memory:/x": (InvalidInputError, ["missing the '//' after 'memory:'", "write memory://x"]),
    "s3:my-bucket/root": (InvalidInputError, ["missing the '//'", "write s3://my-bucket/root"]),
    "nosuchproto://x/root": (StorageError, ["protocol 'nosuchproto'", "fsspec does not know"]),
}


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("value", list(BAD))
def test_bad_url_in_the_variable_is_refused_with_the_fix(value, cwd, monkeypatch):
    from scout_persist import persist

    cls, words = BAD[value]
    monkeypatch.setenv("SCOUT_PERSIST_URL", value)
    for attempt in (lambda: Store(), lambda: persist("cached_value", "json", lambda: 1)):
        with pytest.raises(cls) as err:
            attempt()
        msg = str(err.value)
        assert f"SCOUT_PERSIST_URL={value!r}" in msg
        assert all(w in msg for w in words), msg
        assert "set SCOUT_PERSIST_URL to" in msg or "write " in msg
    assert os.listdir(cwd) == []  # no local folder named 's3:' or 'memory:'


@pytest.mark.parametrize("value", ["s3:/scout", "s3://"])
def test_bad_url_given_directly_names_the_url_not_the_variable(value, monkeypatch):
    monkeypatch.delenv("SCOUT_PERSIST_URL", raising=False)
    with pytest.raises(InvalidInputError) as err:
        Store(value)
    assert str(err.value).startswith(f"store URL {value!r}") and "SCOUT_PERSIST_URL" not in str(err.value)


def test_cli_reports_a_bad_variable(cwd, monkeypatch, capsys):
    monkeypatch.setenv("SCOUT_PERSIST_URL", "s3:/scout")
    rc = main(["ls"])
    err = capsys.readouterr().err
    assert rc == 2 and "scout-persist ls: SCOUT_PERSIST_URL='s3:/scout' is missing the '//'" in err
    assert os.listdir(cwd) == []


def test_good_urls_open(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(tmp_path / "root"))
    assert Store().url == str(tmp_path / "root") and Store().origin == "SCOUT_PERSIST_URL"
    assert store_url("memory://x") == "memory://x"
    assert store_url("s3://bucket/prefix") == "s3://bucket/prefix"
    assert store_url("simplecache::memory://x") == "simplecache::memory://x"
    assert Store("relative/dir").url == os.path.abspath("relative/dir")  # a local path may contain no scheme
    monkeypatch.chdir(tmp_path)
    assert Store("data:v2").url == str(tmp_path / "data:v2")  # 'data' is no protocol and no '/' follows the colon
    monkeypatch.delenv("SCOUT_PERSIST_URL")
    assert Store().url == os.path.expanduser("~/.scout") and Store().origin == ""


def test_root_below_a_regular_file_names_the_variable(tmp_path, monkeypatch):
    (tmp_path / "plain").write_text("x")
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(tmp_path / "plain" / "root"))
    with pytest.raises(StorageError) as err:
        Store()
    msg = str(err.value)
    assert msg.startswith(f"SCOUT_PERSIST_URL={str(tmp_path / 'plain' / 'root')!r}")
    assert f"{str(tmp_path / 'plain')!r} is a file, not a folder" in msg and "set SCOUT_PERSIST_URL to" in msg


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux sysfs, where nobody may create folders")
def test_unwritable_root_is_a_storage_error_naming_the_variable(monkeypatch):
    from scout_persist import persist
    from scout_persist.job import JobWriter
    from scout_persist.locks import Lock

    monkeypatch.setenv("SCOUT_PERSIST_URL", "/sys/scout-persist-test")
    store = Store()
    attempts = {
        "persist": lambda: persist("cached_value", "json", lambda: 1),  # the lock is its first write
        "lock": lambda: Lock(store, "tmp/persist_locks/x.lock").acquire(timeout=0),
        "job": lambda: JobWriter(store, "var/jobs/W/t/Default").setup(),
    }
    for name, attempt in attempts.items():
        with pytest.raises(StorageError) as err:
            attempt()
        msg = str(err.value)
        assert not isinstance(err.value, PermissionError), name
        assert "the store root '/sys/scout-persist-test' (from $SCOUT_PERSIST_URL) is not writable" in msg, msg
        assert "set SCOUT_PERSIST_URL to a folder this user may write" in msg
    assert not os.path.exists("/sys/scout-persist-test")
