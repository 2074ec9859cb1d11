"""What a backend error means: transient (worth another try), a failed precondition, or a real failure."""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_BACKEND_MODULES = ("botocore", "aiobotocore", "aiohttp", "urllib3", "requests", "s3fs", "fsspec", "gcsfs", "adlfs")
DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_TRANSIENT_WORDS = (
    "500",
    "502",
    "503",
    "504",
    "InternalError",
    "Internal Server Error",
    "ServiceUnavailable",
    "Service Unavailable",
    "Bad Gateway",
    "Gateway Timeout",
    "SlowDown",
    "RequestTimeout",
    "Connection reset",
    "connection was closed",
    "Server disconnected",
    "timed out",
)
# s3fs maps S3's 500 InternalError to EREMOTEIO and 503 SlowDown/ServiceUnavailable to EBUSY.
_TRANSIENT_ERRNOS = {
    getattr(errno, "EREMOTEIO", errno.EIO),
    errno.EBUSY,
    errno.ECONNRESET,
    errno.ETIMEDOUT,
    errno.EPIPE,
}


def is_backend_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _BACKEND_MODULES


def http_status(exc: BaseException) -> int:
    """The HTTP status of an object-store error (s3fs chains botocore's ClientError), 0 when there is none."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return 0
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        seen = seen.__cause__ or seen.__context__
    return 0


def precondition_failed(exc: BaseException) -> bool:
    """412 (If-Match / If-None-Match did not hold) or 404 (If-Match on an entry that is gone)."""
    return (
        isinstance(exc, (FileExistsError, FileNotFoundError))
        or http_status(exc) in (404, 412)
        or (isinstance(exc, OSError) and exc.errno == errno.EINVAL and "pre-condition" in str(exc))
    )


# A connection that could not even be opened (nothing listens, no route, a wrong host name): botocore and s3fs have
# already retried it for seconds, so another round here only multiplies the wait (40 s before a down endpoint failed).
_NOT_CONNECTED = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ProxyConnectionError"}
)


def never_connected(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it chains) says the endpoint could not be reached at all."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if any(cls.__name__ in _NOT_CONNECTED for cls in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def missing_credentials(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it chains) is botocore's NoCredentialsError / PartialCredentialsError."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if type(seen).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_transient(exc: BaseException) -> bool:
    """A 5xx reply, a dropped connection or a timeout: worth another try. Not-found/exists/denied are not, nor an
    endpoint that could not be reached at all (the client library retried that already)."""
    if isinstance(exc, (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if never_connected(exc):
        return False
    seen: BaseException | None = exc
    for _ in range(5):  # the error and the causes s3fs chains to it (botocore's ClientError)
        if seen is None:
            break
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        if http_status(seen) >= 500:
            return True
        if isinstance(seen, OSError) and seen.errno in _TRANSIENT_ERRNOS:
            return True
        text = f"{type(seen).__name__} {seen}"
        if any(word in text for word in _TRANSIENT_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


RETRIES = 4
RETRY_BASE_DELAY = 0.1


def retry(operation: Callable[[], T], attempts: int = RETRIES, base_delay: float | None = None) -> T:
    """Run ``operation``; on a transient error wait (exponential backoff with jitter) and try again."""

    for attempt in range(attempts):
        try:
            return operation()
        except Exception as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            delay = RETRY_BASE_DELAY if base_delay is None else base_delay
            time.sleep(delay * (2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
