"""Where a store is and which keys it holds: the root URL (``$SCOUT_PERSIST_URL``), checked, and key rules.

Keys are '/'-separated paths relative to the store root (``var/jobs/Baking/whisk_eggs/Default``); a key may never
escape the root: absolute keys, '..' segments and NUL bytes are refused.
"""

from __future__ import annotations

import os
import re

from .. import settings
from ..errors import InvalidInputError, StorageError, UnsafePathError

DEFAULT_URL = "~/.scout"
URL_VARIABLE = settings.URL.name


def default_url() -> str:
    """The store root: ``SCOUT_PERSIST_URL`` or Scout's own user root ``~/.scout``."""
    return settings.store_url() or DEFAULT_URL


# Protocols whose URL must name a bucket/container: s3://<bucket>/<prefix>
_BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "oci", "r2"})
# Common fsspec protocols, recognised without importing fsspec when a URL lacks its '//' ("s3:bucket")
_COMMON_PROTOCOLS = _BUCKET_PROTOCOLS | {
    "memory",
    "file",
    "local",
    "http",
    "https",
    "ftp",
    "sftp",
    "ssh",
    "hdfs",
    "webhdfs",
    "gdrive",
    "github",
    "zip",
    "tar",
    "dbfs",
    "dir",
    "simplecache",
}
_UNEXPANDED = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.S)


def store_url(url: str | None = None) -> str:
    """The root URL a :class:`Store` opens for ``url`` (None: ``$SCOUT_PERSIST_URL``, else ``~/.scout``), checked.

    Refused, naming where the value came from and how to fix it: white space around the value (it would become a
    folder named ``' '``), a ``$VAR`` left unexpanded, a URL without ``//`` (``s3:/scout``, ``memory:/x``: they would
    silently become local folders named ``s3:``), a protocol fsspec does not know (``S3://``: protocols are
    lower-case), an object-store URL without a bucket (``s3://``), and a local root below a regular file.
    Local paths come back absolute.
    """
    env = settings.store_url()
    value = (env or DEFAULT_URL) if url is None else url
    if url is None and not env:
        what = f"the default store root {value!r} ({URL_VARIABLE} is not set)"
        fix = f"set {URL_VARIABLE} to a folder or URL such as s3://my-bucket/scout"
    elif url is None or url == env:
        what = f"{URL_VARIABLE}={value!r}"
        fix = f"set {URL_VARIABLE} to a local folder or a URL such as s3://my-bucket/scout"
    else:
        what = f"store URL {value!r}"
        fix = "give a local folder or a URL such as s3://my-bucket/scout"
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} is empty; {fix}")
    if value != value.strip():
        where = "starts" if value[0].isspace() else "ends"
        raise InvalidInputError(
            f"{what} {where} with white space, which would become part of a folder or bucket name (a quoting "
            f"mistake, e.g. a space after '='); write {value.strip()!r}"
        )
    m = _UNEXPANDED.search(value)
    if m:
        raise InvalidInputError(
            f"{what} contains {m.group(0)!r}, a shell variable that was never expanded (a literal '$'); "
            f"export that variable before starting, or write its value into the URL; {fix}"
        )
    if "://" in value:
        _check_protocols(value, what, fix)
        return value
    m = _SCHEME.fullmatch(value)
    if m and len(m.group(1)) > 1 and (m.group(2).startswith("/") or m.group(1).lower() in _COMMON_PROTOCOLS):
        proto, rest = m.group(1), m.group(2).lstrip("/")
        raise InvalidInputError(
            f"{what} is missing the '//' after '{proto}:', so it would be a local folder named '{proto}:' in "
            f"{os.getcwd()!r}; write {proto}://{rest}"
        )
    path = os.path.abspath(os.path.expanduser(value))
    probe = path
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.lexists(probe) and not os.path.isdir(probe):
        raise StorageError(f"{what}: {probe!r} is a file, not a folder, so no store can be created at {path!r}; {fix}")
    return path


def _check_protocols(value: str, what: str, fix: str) -> None:
    from fsspec.registry import known_implementations, registry  # lazy: local stores never load fsspec

    for part in value.split("::"):
        proto, sep, rest = part.partition("://")
        proto = proto if sep else part
        if proto not in known_implementations and proto not in registry:
            lower = proto.lower()
            if lower != proto and (lower in known_implementations or lower in registry):
                raise InvalidInputError(
                    f"{what} uses protocol {proto!r}; fsspec protocols are lower-case: write {lower}://{rest}"
                )
            raise StorageError(
                f"{what} uses protocol {proto!r}, which fsspec does not know; use a local folder or a known "
                f"protocol (s3://, gs://, az://, memory://, file://, ...); {fix}"
            )
        if sep and proto in _BUCKET_PROTOCOLS and not rest.split("/", 1)[0]:
            raise InvalidInputError(
                f"{what} names no bucket; {proto} URLs are {proto}://<bucket>[/<prefix>], "
                f"e.g. {proto}://my-bucket/scout; {fix}"
            )


def check_key(key: str, root: str = "") -> str:
    """Return ``key`` normalised, or raise UnsafePathError when it could escape ``root``."""
    if not isinstance(key, str):
        raise UnsafePathError(f"store key {key!r} is a {type(key).__name__}; keys are str paths relative to the root")
    if "\x00" in key:
        raise UnsafePathError(f"store key {key!r} contains a NUL byte; no file system or object store can hold it")
    if key.startswith("/"):
        raise UnsafePathError(
            f"store key {key!r} is absolute; keys are relative to the store root {root!r} (drop the leading '/')"
        )
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(
            f"store key {key!r} escapes the store root {root!r}; keys may not contain '..' path segments"
        )
    return "/".join(parts)
