"""Registry publishes under ambiguous replies (#12 item 1): the manifest write reaches S3 but its reply is lost.

Through the fault proxy in front of the moto server: "applied, then 500" and "applied, then connection dropped" on
the manifest PUT. A retried publish finds its own token in the entry and yields one version, not two.
"""

from __future__ import annotations

import pytest

from faulty_proxy import FaultyProxy
from scout_persist.errors import StorageError
from scout_persist.registry import Registry
from scout_persist.store import Store

pytestmark = pytest.mark.s3

MANIFEST_PUT = r"/artifacts/model/versions/v\d+\.json"


def _proxied(s3_url: str, s3_endpoint: str, attempts: int):
    proxy = FaultyProxy(s3_endpoint).start()
    retries = {"max_attempts": attempts, "mode": "standard"}
    options = {"endpoint_url": proxy.url, "config_kwargs": {"retries": retries}}
    yield Registry(Store(s3_url, **options)), Registry(Store(s3_url)), proxy
    proxy.stop()


@pytest.fixture(params=[3, 1], ids=["botocore-retries", "no-botocore-retry"])
def proxied(request, s3_url, s3_endpoint):
    """(registry through the fault proxy, registry straight to moto, proxy) on one fresh bucket.

    With botocore's own retries the client re-sends the PUT and meets the entry it wrote (412); without them the
    error reaches the registry, whose create finds the entry on its own."""
    yield from _proxied(s3_url, s3_endpoint, request.param)


@pytest.fixture
def proxied_once(s3_url, s3_endpoint):
    """As ``proxied`` without botocore's retries (a persistent fault fails fast)."""
    yield from _proxied(s3_url, s3_endpoint, 1)


@pytest.mark.parametrize("action", ["fail_after_apply", "drop_after_apply"])
@pytest.mark.parametrize("force", [True, False], ids=["forced", "dedup"])
def test_a_lost_reply_on_the_manifest_write_publishes_one_version(proxied, action, force):
    """``force=True`` turns the content check off, so only the token can tell the entry is ours."""
    reg, direct, proxy = proxied
    rule = proxy.add_rule(action, method="PUT", path=MANIFEST_PUT)
    v = reg.log_artifact("model", {"w.bin": b"weights"}, force=force)
    assert rule.hits == 1  # the fault did hit the manifest write
    assert v.version == "v0"
    assert direct.versions("model") == ["v0"]
    assert direct.resolve("model:v0").manifest == v.manifest
    # the registry is not stuck: the next, different content is v1
    assert reg.log_artifact("model", {"w.bin": b"better weights"}).version == "v1"
    assert direct.versions("model") == ["v0", "v1"]


def test_a_manifest_write_that_never_lands_is_retried(proxied):
    """500 before S3 applied it: the publish tries again and lands once."""
    reg, direct, proxy = proxied
    rule = proxy.add_rule("fail", method="PUT", path=MANIFEST_PUT, times=2)
    assert reg.log_artifact("model", {"w.bin": b"weights"}, force=True).version == "v0"
    assert rule.hits == 2 and direct.versions("model") == ["v0"]


def test_a_manifest_write_that_keeps_failing_gives_a_clear_error(proxied_once):
    reg, direct, proxy = proxied_once
    proxy.add_rule("fail", method="PUT", path=MANIFEST_PUT, times=None)
    with pytest.raises(StorageError) as err:
        reg.log_artifact("model", {"w.bin": b"weights"}, force=True)
    text = str(err.value)
    assert "publishing artifact model:v0 failed" in text and "versions/v0.json" in text and "log it again" in text
    proxy.heal()
    assert direct.versions("model") == []
    assert reg.log_artifact("model", {"w.bin": b"weights"}).version == "v0"
