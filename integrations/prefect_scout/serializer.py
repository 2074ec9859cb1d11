"""The Prefect serializer of scout tasks: a thin door to what the task wrapper stored and the hit check verified.

The scout task wrapper stores a result itself (:mod:`prefect_scout.lifecycle`), so :meth:`ScoutSerializer.dumps`
has nothing to encode.  On a cache hit the hit check (:mod:`prefect_scout.hits`) verified and decoded the
stored bytes; :meth:`ScoutSerializer.loads` returns that decoded value for exactly those bytes.  Bytes that did not
come through that check are refused, never decoded by a guess: whether to unpickle is decided by the job's ``.info``
record, and Prefect keeps only a serializer's ``type`` in its API, so nothing here depends on a field.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from prefect.serializers import Serializer

from scout_persist import payload
from scout_persist.errors import CorruptPayloadError

from . import plans

SERIALIZER_TYPE: Final = "scout-persist"
PICKLE = payload.PICKLE  # the serializer type of values stored with the Python serializer


class ScoutSerializer(Serializer):
    """Stores and loads scout task results; ``scout_type`` is informational (the ``.info`` record decides)."""

    type: Literal["scout-persist"] = SERIALIZER_TYPE
    scout_type: str | None = None

    def dumps(self, obj: Any) -> bytes:
        # The scout task wrapper already stored the job (and Prefect's record of a failed run's exception has no
        # place in the Scout store): the scout storages keep nothing Prefect writes, so no bytes are needed.
        return b""

    def loads(self, blob: bytes) -> Any:
        found, value = plans.value_for(blob)
        if found:
            return value
        raise CorruptPayloadError(
            f"a {len(blob)}-byte payload reached the scout-persist serializer without passing the scout hit check "
            "(checksum against the job's .info); refusing to decode it. Read stored jobs with "
            "scout_persist.Job(path).load(), which verifies and decodes them by their .info"
        )


def scout_type_from_info(info: dict[str, Any]) -> str:
    """How a stored job was written: ``pickle`` when its ``.info`` records one, else its Scout type."""
    record = payload.record_of(info)
    if record is not None and record.get("format") == PICKLE:
        return PICKLE
    return str(info.get("type") or "binary")


__all__ = ["PICKLE", "SERIALIZER_TYPE", "ScoutSerializer", "scout_type_from_info"]
