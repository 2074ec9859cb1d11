"""The Prefect serializer of scout tasks: Scout's result bytes for Scout types, zstd pickle for everything else.

Prefect keeps only a serializer's ``type`` in its API, never its fields, so decoding never depends on a field that
could be lost: the metadata storage rebuilds the serializer from the job's ``.info`` (its Scout ``type``), and a
serializer whose ``scout_type`` was lost still decodes pickles (self-describing) and refuses anything else loudly.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect.serializers import Serializer

from scout_persist import serializers as core
from scout_persist.errors import CorruptPayloadError

from . import settings

SERIALIZER_TYPE = "scout-persist"
PICKLE = core.PICKLE  # the Scout-side type name of values stored with the Python serializer


def is_scout_type(scout_type: str | None) -> bool:
    """True for a Ruby Scout result type; False for the Python serializer (None or ``pickle``)."""
    return scout_type not in (None, "", PICKLE)


class ScoutSerializer(Serializer):
    """Scout result bytes for ``scout_type`` (``string``, ``json``, ...); zstd pickle when it is None/``pickle``."""

    type: Literal["scout-persist"] = SERIALIZER_TYPE
    scout_type: str | None = None

    def dumps(self, obj: Any) -> bytes:
        if is_scout_type(self.scout_type):
            return core.dump(obj, self.scout_type)
        data, record = core.dump_pickle_with_record(obj, settings.compression())
        _stash_record(record)
        return data

    def loads(self, blob: bytes) -> Any:
        data = blob.encode("utf-8") if isinstance(blob, str) else bytes(blob)
        if is_scout_type(self.scout_type):
            return core.load(data, self.scout_type)
        if not core.is_pickle(data):
            raise CorruptPayloadError(
                f"a {len(data)}-byte payload reached the scout-persist serializer without its Scout type and is "
                "not a scout-persist pickle; read it through scout_persist.Job(path).load(), which takes the type "
                "from the job's .info"
            )
        return core.load_pickle(data)


def _stash_record(record: dict) -> None:
    """Hand the pickle record (codec, sizes, checksum) to the run being persisted; its ``.info`` keeps it."""
    from prefect.context import TaskRunContext

    from . import runs

    ctx = TaskRunContext.get()
    plan = runs.for_run(ctx.task_run.id) if ctx and ctx.task_run else None
    if isinstance(plan, runs.RunPlan):
        plan.payload = record


def info_type(serializer: ScoutSerializer) -> str:
    """The ``type`` written to ``.info``: the Scout type, or ``binary`` (opaque to Ruby) for pickled values."""
    return serializer.scout_type if is_scout_type(serializer.scout_type) else "binary"  # type: ignore[return-value]


def scout_type_from_info(info: dict) -> str:
    """The serializer type that decodes a stored job: ``pickle`` when its ``.info`` records one, else its type."""
    if info.get("serializer") == PICKLE:
        return PICKLE
    return str(info.get("type") or "binary")


__all__ = ["PICKLE", "SERIALIZER_TYPE", "ScoutSerializer", "info_type", "is_scout_type", "scout_type_from_info"]
