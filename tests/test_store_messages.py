"""What a newcomer's store mistakes say (issue 25 item 4): each message names the value, the rule and the fix.

White space around a root, a protocol in capitals, S3 without credentials, a bucket that does not exist, an endpoint
nobody listens on — through a real moto S3 server (tests/s3_server.py).
"""

from __future__ import annotations

import os
import re

import pytest

from scout_persist import persist
from scout_persist.errors import InvalidInputError, KeyNotFound, StorageError
from scout_persist.store import Store, faults
from scout_persist.store.s3 import BOTOCORE_RETRIES, client_options


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("value", [" /data/scout", "/data/scout ", "\t/data/scout", "s3://bucket/scout\n"])
def test_white_space_around_the_root_is_refused_and_no_folder_is_made(value, cwd, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_URL", value)
    with pytest.raises(InvalidInputError) as err:
        Store()
    msg = str(err.value)
    assert f"SCOUT_PERSIST_URL={value!r}" in msg and "white space" in msg and f"write {value.strip()!r}" in msg
    monkeypatch.delenv("SCOUT_PERSIST_URL")
    with pytest.raises(InvalidInputError, match=rf"store URL {re.escape(repr(value))} (starts|ends) with white space"):
        Store(value)
    assert os.listdir(cwd) == []  # no folder named ' '


def test_blank_root_is_refused(cwd, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_URL", "   ")
    with pytest.raises(InvalidInputError, match=r"SCOUT_PERSIST_URL='   ' is empty; set SCOUT_PERSIST_URL to"):
        Store()


@pytest.mark.parametrize("value", ["S3://bucket/scout", "Memory://x", "s3::S3://bucket/x"])
def test_a_protocol_in_capitals_says_protocols_are_lower_case(value, cwd):
    with pytest.raises(InvalidInputError) as err:
        Store(value)
    proto = next(p for p in value.replace("::", "://").split("://") if p.lower() != p)
    assert f"uses protocol {proto!r}; fsspec protocols are lower-case: write {proto.lower()}://" in str(err.value)
    assert os.listdir(cwd) == []


# -- S3 ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def no_credentials(s3_server, monkeypatch):
    """The moto server's endpoint, with no credentials anywhere botocore looks (environment, files, metadata)."""
    import fsspec.config

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("FSSPEC_S3_KEY", "FSSPEC_S3_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setitem(fsspec.config.conf, "s3", {})
    return s3_server.url


def test_s3_without_credentials_says_which_variables_to_set(no_credentials):
    store = Store("s3://some-bucket/scout", endpoint_url=no_credentials, skip_instance_cache=True)
    for attempt in (lambda: store.put("x", b"1"), lambda: store.exists("x")):
        with pytest.raises(StorageError) as err:
            attempt()
        msg = str(err.value)
        assert "s3://some-bucket/scout/x" in msg and "no S3 credentials were found" in msg, msg
        assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in msg and "AWS_PROFILE" in msg and "anon=True" in msg
        assert "NoCredentialsError" in msg


def test_a_missing_bucket_says_create_the_bucket(s3_url):
    store = Store("s3://no-such-bucket/scout")
    with pytest.raises(StorageError) as err:
        store.put("var/jobs/W/t/x", b"1")
    msg = str(err.value)
    assert "writing 's3://no-such-bucket/scout/var/jobs/W/t/x' failed" in msg
    assert "the bucket 'no-such-bucket' does not exist" in msg and "aws s3 mb s3://no-such-bucket" in msg, msg
    with pytest.raises(KeyNotFound):
        store.get("var/jobs/W/t/x")  # a read stays a miss


def test_persist_on_a_missing_bucket_fails_at_once_instead_of_waiting_for_its_lock(s3_url):
    # Its lock's conditional create met NoSuchBucket, read as "someone else holds it": the lock waited for ever.
    with pytest.raises(StorageError, match="the bucket 'no-such-bucket' does not exist"):
        persist("table", "json", lambda: {"rows": 3}, store="s3://no-such-bucket/scout")


def test_a_down_endpoint_names_it_and_is_not_retried_by_the_store(s3_url):
    store = Store("s3://bucket/scout", endpoint_url="http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(StorageError) as err:
        store.get("x")
    msg = str(err.value)
    assert "reading 's3://bucket/scout/x' failed: the S3 endpoint http://127.0.0.1:9 could not be reached" in msg
    assert "FSSPEC_S3_ENDPOINT_URL" in msg and "EndpointConnectionError" in msg
    assert faults.never_connected(err.value) and not faults.is_transient(err.value.__cause__)


def test_botocore_retries_once_under_the_store_unless_configured(monkeypatch):
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "s3", {})
    assert client_options({"endpoint_url": "http://x"}) == {
        "endpoint_url": "http://x",
        "config_kwargs": {"retries": BOTOCORE_RETRIES},
    }
    mine = {"config_kwargs": {"retries": {"max_attempts": 7}, "connect_timeout": 1}}
    assert client_options(mine) is mine
    monkeypatch.setitem(fsspec.config.conf, "s3", {"config_kwargs": {"read_timeout": 30}})
    assert client_options({})["config_kwargs"] == {"read_timeout": 30, "retries": BOTOCORE_RETRIES}
    monkeypatch.setitem(fsspec.config.conf, "s3", {"config_kwargs": {"retries": {"max_attempts": 9}}})
    assert client_options({}) == {}
