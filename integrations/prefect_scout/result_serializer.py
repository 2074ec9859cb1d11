"""The Prefect serializer of scout tasks: a thin door to what the task wrapper stored and the hit rule served.

The scout task wrapper stores a result itself (:mod:`prefect_scout.lifecycle`), so :meth:`ScoutSerializer.dumps`
has nothing to encode.  On a cache hit the attempt's verdict (:mod:`scout_persist.verdict`) verified and decoded the
stored bytes; the result read hands the value over as a small unique token (:func:`hand_over`) and
:meth:`ScoutSerializer.loads` redeems it, once.  Anything else is refused, never decoded by a guess: whether to
unpickle is decided by the job's ``.info`` record, and Prefect keeps only a serializer's ``type`` in its API, so
nothing here depends on a field.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Any, Final, Literal

from prefect.serializers import Serializer

from scout_persist.errors import CorruptPayloadError

SERIALIZER_TYPE: Final = "scout-persist"
TOKEN_PREFIX = b"scout-persist:served:"
MAX_TOKENS = 4096  # values handed over and not yet redeemed (each is redeemed right after its result read)

_guard = threading.Lock()
_served: OrderedDict[bytes, Any] = OrderedDict()


def hand_over(value: Any) -> bytes:
    """A token for ``value``, served by the hit rule: what the result read returns, redeemed once by
    :meth:`ScoutSerializer.loads`."""
    token = TOKEN_PREFIX + uuid.uuid4().hex.encode()
    with _guard:
        _served[token] = value
        while len(_served) > MAX_TOKENS:
            _served.popitem(last=False)
    return token


def redeem(blob: Any) -> tuple[bool, Any]:
    """``(True, value)`` for a token :func:`hand_over` gave out and nobody redeemed yet, else ``(False, None)``."""
    if not isinstance(blob, bytes) or not blob.startswith(TOKEN_PREFIX):
        return False, None
    with _guard:
        if blob not in _served:
            return False, None
        return True, _served.pop(blob)


class ScoutSerializer(Serializer):
    """Stores and loads scout task results; ``scout_type`` is informational (the ``.info`` record decides)."""

    type: Literal["scout-persist"] = SERIALIZER_TYPE
    scout_type: str | None = None

    def dumps(self, obj: Any) -> bytes:
        # The scout task wrapper already stored the job (and Prefect's record of a failed run's exception has no
        # place in the Scout store): the scout storages keep nothing Prefect writes, so no bytes are needed.
        return b""

    def loads(self, blob: bytes) -> Any:
        found, value = redeem(blob)
        if found:
            return value
        raise CorruptPayloadError(
            f"a {len(blob)}-byte payload reached the scout-persist serializer without passing the scout hit check "
            "(checksum against the job's .info); refusing to decode it. Read stored jobs with "
            "scout_persist.Job(path).load(), which verifies and decodes them by their .info"
        )


__all__ = ["SERIALIZER_TYPE", "ScoutSerializer", "hand_over", "redeem"]
