"""``arrow``: a ``pyarrow.Table`` as an Arrow IPC file (schema and its metadata kept).

The compression spec goes inside the file (Arrow's per-buffer zstd); uncompressed, a local result is read as a
private memory map and the table's buffers point into it (zero copy).  Any Arrow reader opens the result file.

Record: ``{"format": "arrow", "version": 1, "codec": "none", "compression": "zstd:3"|"none", "rows",
"stored_size", "checksum"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..checksums import checksum
from ..equality import difference
from ..errors import CorruptPayloadError, UnsupportedValueError
from . import Format, Stored, compression, loaded


class Arrow(Format):
    name = "arrow"
    version = 1
    libraries = ("pyarrow",)

    def can_encode(self, value: Any) -> bool:
        pa = loaded("pyarrow")
        return pa is not None and type(value) is pa.Table

    def encode(self, value: Any, spec: str | None, where: str) -> Stored:
        pa = self.require("pyarrow", "storing a table", where)
        if type(value) is not pa.Table:
            raise UnsupportedValueError(
                f"a {type(value).__name__} cannot be stored as arrow: arrow holds pyarrow.Table values "
                "(pyarrow.Table.from_batches / from_pandas build one); or declare format='pickle'"
            )
        codec, level = compression(spec)
        options = pa.ipc.IpcWriteOptions(compression=None if codec == "none" else pa.Codec(codec, level))
        sink = pa.BufferOutputStream()
        try:
            with pa.ipc.new_file(sink, value.schema, options=options) as writer:
                writer.write_table(value)
        except (pa.ArrowException, ValueError) as exc:
            raise UnsupportedValueError(
                f"a pyarrow.Table cannot be stored as arrow ({exc}); declare format='pickle'"
            ) from exc
        data = sink.getvalue()
        record = {
            "codec": "none",
            "level": None,
            "compression": "none" if codec == "none" else f"{codec}:{level}",
            "rows": value.num_rows,
            "size": data.size,
            "stored_size": data.size,
            "checksum": checksum(data),
        }
        problem = difference(value, self.decode(data, record, where))
        if problem:
            raise UnsupportedValueError(
                f"a pyarrow.Table cannot be stored as arrow without change: a cache hit would give back a different "
                f"table ({problem}; an extension type this process cannot read back?); register the extension type, "
                "or declare format='pickle'"
            )
        return Stored(data, record, value)

    def decode(self, data: Any, record: Mapping[str, Any], where: str) -> Any:
        pa = self.require("pyarrow", "reading a table stored", where)
        try:
            return pa.ipc.open_file(pa.py_buffer(data)).read_all()
        except (pa.ArrowException, OSError) as exc:
            raise CorruptPayloadError(f"{where}: the Arrow IPC payload does not load ({exc})") from exc

    def maps(self, record: Mapping[str, Any]) -> bool:
        return record.get("compression") == "none"


FORMAT = Arrow()
