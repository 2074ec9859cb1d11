"""``json``: JSON-representable values as Scout JSON (Ruby's own ``json`` bytes), only when asked for.

``format="json"`` stores dicts with str keys, lists, str, int, float, bool and None as compact JSON, uncompressed,
and gives the job the ``.info`` type ``json``: Ruby reads the result as its own JSON result.  Lossless changes of
representation are accepted (a tuple comes back as a list); anything else is refused.

Record: ``{"format": "json", "version": 1, "codec": "none", "stored_size", "checksum"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import payload, scout_types
from ..checksums import checksum
from ..errors import CorruptPayloadError, UnsupportedValueError
from . import Format, Stored


class Json(Format):
    name = "json"
    version = 1
    ruby_type = "json"

    def can_encode(self, value: Any) -> bool:
        return False  # never chosen by itself: a dict could as well be a pickle the user expects back unchanged

    def encode(self, value: Any, spec: str | None, where: str) -> Stored:

        fix = "return JSON data (dict with str keys, list, str, int, float, bool, None), or declare format='pickle'"
        try:
            data = scout_types.dump(value, "json")
        except (UnsupportedValueError, UnicodeEncodeError) as exc:
            raise UnsupportedValueError(f"a {type(value).__name__} cannot be stored as json: {exc}; {fix}") from exc
        back = scout_types.load(data, "json")
        if not payload.lossless(value, back):
            raise UnsupportedValueError(
                f"a {type(value).__name__} {value!r:.80} cannot be stored as json without change: a cache hit would "
                f"give {type(back).__name__} {back!r:.80}; {fix}"
            )
        record = {
            "codec": "none",
            "level": None,
            "size": len(data),
            "stored_size": len(data),
            "checksum": checksum(data),
        }
        return Stored(data, record, payload.handed(value, back))

    def decode(self, data: Any, record: Mapping[str, Any], where: str) -> Any:

        try:
            return scout_types.load(bytes(data), "json")
        except CorruptPayloadError as exc:
            raise CorruptPayloadError(f"{where}: {exc}") from exc


FORMAT = Json()
