"""S3 (and S3-compatible endpoints) through s3fs: one GET per read, one PUT per small write, multipart uploads
completed only on success (aborted on every failure path), conditional writes (``If-Match`` / ``If-None-Match``)
that recognise their own bytes after a lost reply, and the listing and aborting of uploads a killed writer left."""

from __future__ import annotations

import datetime
import email.utils
import io
import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, cast

from .backend import ABSENT, Capabilities, Conflict, Sync, Upload, Versioned
from .faults import http_status, is_transient, missing_credentials, never_connected, precondition_failed, retry
from .generic import FsspecBackend

if TYPE_CHECKING:
    from typing_extensions import Buffer

log = logging.getLogger(__name__)

# Writes smaller than this are buffered and sent as one PUT; larger ones stream as a multipart upload that is
# completed only when the writer's block ends without error.
SINGLE_PUT_MAX = 8 << 20
# put() sends a value already in memory as one PUT up to this size (where s3fs would switch to multipart).
PUT_MULTIPART_MIN = 100 << 20
AMBIGUITY_RETRIES = 4
# botocore's own retries when the caller sets none: its default (legacy mode, 5 attempts with up to 8 s of backoff
# between them) under the Store's own retries made a down endpoint fail after 40 s; the Store retries transient
# errors itself, so botocore tries twice.
BOTOCORE_RETRIES = {"max_attempts": 2, "mode": "standard"}


def client_options(storage_options: dict[str, Any]) -> dict[str, Any]:
    """``storage_options`` for s3fs, with :data:`BOTOCORE_RETRIES` unless the caller or fsspec's configuration
    (``FSSPEC_S3_CONFIG_KWARGS``) set botocore's retries."""
    import fsspec.config  # lazy: local stores never load fsspec

    configured = {
        **(fsspec.config.conf.get("s3", {}).get("config_kwargs") or {}),
        **(storage_options.get("config_kwargs") or {}),
    }
    if "retries" in configured:
        return storage_options
    return {**storage_options, "config_kwargs": {**configured, "retries": dict(BOTOCORE_RETRIES)}}


def bucket_missing(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it chains) is S3's NoSuchBucket."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        response = getattr(seen, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        if code == "NoSuchBucket" or "bucket does not exist" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class S3Backend(FsspecBackend):
    kind_name = "s3"

    def __init__(self, url: str, root: str, fs: Any) -> None:
        super().__init__(url, root, fs)
        self.capabilities = Capabilities(conditional_writes=True, multipart=True, remote=True, names=("s3",))

    @property
    def endpoint(self) -> str:
        """The S3 endpoint this backend talks to, for messages."""
        given = getattr(self.fs, "endpoint_url", None) or (getattr(self.fs, "client_kwargs", None) or {}).get(
            "endpoint_url"
        )
        return str(given) if given else "AWS's own S3 endpoint (no endpoint_url / FSSPEC_S3_ENDPOINT_URL set)"

    def explain(self, exc: BaseException) -> str | None:
        if missing_credentials(exc):
            return (
                "no S3 credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or FSSPEC_S3_KEY and "
                "FSSPEC_S3_SECRET), or AWS_PROFILE naming a profile of ~/.aws/credentials; a public bucket is read "
                "with the storage option anon=True"
            )
        if never_connected(exc):
            return (
                f"the S3 endpoint {self.endpoint} could not be reached (nothing listens there, or no route to it); "
                "check that the server runs and that FSSPEC_S3_ENDPOINT_URL (or the endpoint_url storage option) "
                "names it"
            )
        if bucket_missing(exc):
            bucket = self.root.split("/", 1)[0]
            return (
                f"the bucket {bucket!r} does not exist (or these credentials cannot see it); create it first "
                f"(aws s3 mb s3://{bucket}, with --endpoint-url for an S3-compatible server), or point the store at "
                "an existing bucket"
            )
        return None

    # -- reading ----------------------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        # One GET: s3fs would otherwise HEAD first to decide on a concurrent ranged download.
        data: bytes = self.fs.cat_file(self.path(key), max_concurrency=1)
        return data

    def get_versioned(self, key: str) -> Versioned:
        from fsspec.asyn import sync  # lazy: local stores never load fsspec

        bucket, obj, _ = self.fs.split_path(self.path(key))

        async def fetch() -> tuple[bytes, dict[str, Any]]:
            reply = await self.fs._call_s3("get_object", Bucket=bucket, Key=obj)
            body = reply["Body"]
            try:
                data = await body.read()
            finally:
                body.close()
            return data, reply

        data, reply = sync(self.fs.loop, fetch)
        age = None
        modified = reply.get("LastModified")
        date = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if modified is not None and date:
            try:
                age = email.utils.parsedate_to_datetime(date).timestamp() - modified.timestamp()
            except (TypeError, ValueError):
                age = None
        return Versioned(bytes(data), str(reply["ETag"]), age)

    # -- writing ----------------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, durable: bool | Sync = True) -> None:
        if len(data) >= PUT_MULTIPART_MIN:
            # The writer's multipart upload is aborted on every failure path (s3fs's own multipart pipe_file aborts
            # on Exception only, not on KeyboardInterrupt/SystemExit).
            with self.writer(key) as fh:
                fh.write(data)
            return
        try:
            self.fs.pipe_file(self.path(key), bytes(data))
        finally:
            self.forget(key)

    @contextmanager
    def writer(self, key: str, durable: bool | Sync = True) -> Iterator[IO[bytes]]:
        with _ObjectWriter(self, key).session() as fh:
            yield fh

    def put_if(self, key: str, data: bytes, expect: str | None) -> str:
        """Idempotent under ambiguous replies: after a 5xx or a dropped connection (or a client-side retry that
        meets the entry its first try wrote) the entry is read back; our own bytes there mean success.  A refusal
        (412) is read back too, and the Conflict carries what was found (the caller's lookup, no second GET)."""
        data = bytes(data)
        bucket, obj, _ = self.fs.split_path(self.path(key))
        condition = {"IfNoneMatch": "*"} if expect is ABSENT else {"IfMatch": expect}
        for attempt in range(AMBIGUITY_RETRIES):
            try:
                try:
                    reply = self.fs.call_s3("put_object", Bucket=bucket, Key=obj, Body=data, **condition)
                finally:
                    self.forget(key)
                return str(reply["ETag"])
            except OSError as exc:
                if bucket_missing(exc):
                    raise  # not a failed precondition: no write can ever succeed (a lock would wait for ever)
                refused = precondition_failed(exc)
                if not refused and not is_transient(exc) and http_status(exc) != 409:
                    raise
                try:
                    seen = self.get_versioned(key)
                except FileNotFoundError:
                    seen = None
                if seen is not None and seen.data == data:
                    return seen.version
                if refused or (seen is None) != (expect is ABSENT) or (seen is not None and seen.version != expect):
                    wanted = "absent" if expect is ABSENT else f"at version {expect}"
                    raise Conflict(
                        f"{self.url}/{key!r} is no longer {wanted}: another writer changed it first",
                        current=seen,
                        read=True,
                    ) from exc
                if attempt == AMBIGUITY_RETRIES - 1:
                    raise
                time.sleep(0.1 * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def delete_if(self, key: str, version: str) -> bool:
        bucket, obj, _ = self.fs.split_path(self.path(key))
        try:
            self.fs.call_s3("delete_object", Bucket=bucket, Key=obj, IfMatch=version)
        except OSError as exc:
            if precondition_failed(exc):
                return False  # changed since, or gone (maybe by our own delete whose reply was lost)
            raise
        finally:
            self.forget(key)
        return True

    def prepare(self, key: str) -> None:
        pass  # no folders on S3

    # -- multipart uploads ------------------------------------------------------------------------------------
    def incomplete_uploads(self, older_than: float = 0.0) -> list[Upload]:
        """Uploads below the root never completed nor aborted, idle (since their last part, else since begun) for
        more than ``older_than`` seconds by S3's clock against ours; least recently active first. (moto's server
        reports every upload as begun in 2010; part times still give real ages.)"""
        bucket, prefix = self._scope()
        now = time.time()
        found: list[Upload] = []
        markers: dict[str, str] = {}
        while True:
            page = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix, **markers)
            for u in page.get("Uploads") or []:
                initiated = _epoch(u.get("Initiated"))
                if older_than > 0 and initiated is not None and now - initiated < older_than:
                    continue  # begun too recently to be idle that long: no need to list its parts
                last = self._last_part_time(bucket, u["Key"], u["UploadId"])
                active = max(t for t in (initiated, last) if t is not None) if (initiated or last) else None
                if older_than > 0 and (active is None or now - active < older_than):
                    continue
                found.append(Upload(u["Key"][len(prefix) :], u["UploadId"], initiated, active))
            if not page.get("IsTruncated"):
                break
            markers = {"KeyMarker": page.get("NextKeyMarker", ""), "UploadIdMarker": page.get("NextUploadIdMarker", "")}
        return sorted(found, key=lambda u: (u.last_active or 0.0, u.key))

    def _last_part_time(self, bucket: str, key: str, upload_id: str) -> float | None:
        newest: float | None = None
        marker = 0
        while True:
            try:
                page = self.fs.call_s3(
                    "list_parts", Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
            except FileNotFoundError:  # completed or aborted since the listing
                return newest
            for part in page.get("Parts") or []:
                t = _epoch(part.get("LastModified"))
                if t is not None and (newest is None or t > newest):
                    newest = t
            if not page.get("IsTruncated"):
                return newest
            marker = int(page.get("NextPartNumberMarker") or 0)

    def abort_upload(self, upload: Upload) -> bool:
        bucket, prefix = self._scope()
        try:
            self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=prefix + upload.key, UploadId=upload.upload_id)
        except FileNotFoundError:  # NoSuchUpload: completed or aborted meanwhile
            return False
        return True

    def _scope(self) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(self.root)
        return bucket, (key.rstrip("/") + "/" if key else "")


class _ObjectWriter(io.RawIOBase):
    """Buffers a small object for one PUT; past SINGLE_PUT_MAX streams a multipart upload that is completed on
    success and aborted on error, so a failed block publishes nothing."""

    def __init__(self, backend: S3Backend, key: str) -> None:
        self.backend = backend
        self.key = key
        self.path = backend.path(key)
        self.buffer = io.BytesIO()
        self.upload: Any = None  # s3fs's file object of the multipart upload

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        if self.upload is not None:
            written: int = self.upload.write(data)
            return written
        n = self.buffer.write(data)
        if self.buffer.tell() >= SINGLE_PUT_MAX:
            self.upload = self.backend.fs.open(self.path, "wb", autocommit=False, block_size=SINGLE_PUT_MAX)
            self.upload.write(self.buffer.getbuffer())
            self.buffer = io.BytesIO()
        return n

    @contextmanager
    def session(self) -> Iterator[IO[bytes]]:
        try:
            try:
                yield cast("IO[bytes]", self)  # a raw binary writer
            except BaseException:
                self._abort()
                raise
            if self.upload is None:
                data = self.buffer.getvalue()
                retry(lambda: self.backend.fs.pipe_file(self.path, data))
            else:
                try:
                    self.upload.close()  # uploads the last part, does not complete the upload
                    self.upload.commit()
                except BaseException:
                    self._abort()
                    raise
        finally:
            self.backend.forget(self.key)

    def _abort(self) -> None:
        """Abort the multipart upload (its parts never become an object). Called while another exception is on its
        way: a failing abort is logged, naming the upload and the command that cleans it, and does not replace that
        exception."""
        upload, self.upload = self.upload, None
        if upload is None:
            return
        mpu = getattr(upload, "mpu", None)
        upload_id = mpu.get("UploadId") if isinstance(mpu, dict) else None
        try:
            upload.discard()
        except BaseException as exc:  # also a second Ctrl-C: the first one is the one to report
            log.warning(
                "could not abort the multipart upload %s of %s/%s (%s: %s); its parts stay billed until aborted: run "
                "'scout-persist gc --uploads %s --dry-run', then without --dry-run",
                upload_id or "(id unknown)",
                self.backend.url,
                self.key,
                type(exc).__name__,
                exc,
                self.backend.url,
            )
            if not isinstance(exc, Exception):
                raise
        finally:
            upload.closed = True  # nothing left to flush when the file object is collected


def _epoch(value: object) -> float | None:
    return value.timestamp() if isinstance(value, datetime.datetime) else None


__all__ = ["PUT_MULTIPART_MIN", "S3Backend", "SINGLE_PUT_MAX"]
