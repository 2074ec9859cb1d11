"""``parquet``: a pandas DataFrame or Series as Parquet (pyarrow), index, dtypes, names and ``attrs`` kept.

Parquet compresses its own column chunks, so the compression spec goes inside the file (``zstd:3`` -> Parquet
zstd level 3, ``none`` -> uncompressed) and the stored bytes are a plain ``.parquet`` file any tool reads.
Encoding decodes the bytes once and compares them with the value (``pandas.testing``, exact: values, dtypes, index
type and names, column type, flags, ``attrs``): a frame Parquet cannot hold exactly (mixed-type object columns,
non-string column names, a ``DatetimeIndex`` with a ``freq``, ...) is refused, so what the first run hands on equals
what every cached run gets.

Record: ``{"format": "parquet", "version": 1, "codec": "none", "compression": "zstd:3", "kind": "frame"|"series",
"series_name", "stored_size", "checksum"}``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from .. import codecs
from ..errors import CorruptPayloadError, UnsupportedValueError
from . import Format, Stored, compression, loaded

SERIES_COLUMN = "__series__"  # the column of a Series without a name


class Parquet(Format):
    name = "parquet"
    version = 1
    libraries = ("pandas", "pyarrow")

    def can_encode(self, value: Any) -> bool:
        pd = loaded("pandas")
        return pd is not None and type(value) in (pd.DataFrame, pd.Series)

    def encode(self, value: Any, spec: str | None, where: str) -> Stored:
        pd = self.require("pandas", "storing a DataFrame", where)
        self.require("pyarrow", "storing a DataFrame", where)
        if type(value) not in (pd.DataFrame, pd.Series):
            raise UnsupportedValueError(
                f"a {type(value).__name__} cannot be stored as parquet: parquet holds pandas.DataFrame and "
                "pandas.Series values; convert it, or declare format='pickle'"
            )
        record: dict[str, Any] = {"kind": "frame"}
        frame = value
        if type(value) is pd.Series:
            name = value.name
            if name is not None and not isinstance(name, (str, int, float, bool)):
                raise UnsupportedValueError(
                    f"a Series named {name!r:.60} cannot be stored as parquet: its name must be a str, number or "
                    "None; rename it, or declare format='pickle'"
                )
            record.update(kind="series", series_name=name)
            frame = value.to_frame(name=SERIES_COLUMN if name is None else str(name))
        codec, level = compression(spec)
        options: dict[str, Any] = (
            {"compression": None} if codec == "none" else {"compression": codec, "compression_level": level}
        )
        buf = io.BytesIO()
        try:
            frame.to_parquet(buf, engine="pyarrow", index=None, **options)
        except Exception as exc:  # pyarrow's ArrowTypeError/ArrowInvalid, pandas' ValueError
            raise UnsupportedValueError(
                f"a {type(value).__name__} cannot be stored as parquet ({type(exc).__name__}: {exc}); give every "
                "column one type (no mixed objects) and string column names, or declare format='pickle'"
            ) from exc
        data = buf.getbuffer()
        record.update(
            codec="none",
            level=None,
            compression="none" if codec == "none" else f"{codec}:{level}",
            size=data.nbytes,
            stored_size=data.nbytes,
            checksum=codecs.checksum(data),
        )
        back = self._frame(data, record, where)
        problem = difference(pd, value, back)
        if problem:
            raise UnsupportedValueError(
                f"a {type(value).__name__} cannot be stored as parquet without change: a cache hit would give "
                f"back a different value ({problem}); convert the columns (e.g. df.astype(...)), or declare "
                "format='pickle'"
            )
        del back  # equal, exactly: the value itself is handed on (no second frame kept alive)
        return Stored(data, record, value)

    def _frame(self, data: Any, record: Mapping[str, Any], where: str) -> Any:
        pd = self.require("pandas", "reading a DataFrame stored", where)
        pa = self.require("pyarrow", "reading a DataFrame stored", where)
        frame = pd.read_parquet(pa.BufferReader(memoryview(data)), engine="pyarrow")
        if record.get("kind") == "series":
            series = frame.iloc[:, 0]
            series.name = record.get("series_name")
            return series
        return frame

    def decode(self, data: Any, record: Mapping[str, Any], where: str) -> Any:
        try:
            return self._frame(data, record, where)
        except (OSError, ValueError) as exc:
            raise CorruptPayloadError(
                f"{where}: the Parquet payload does not load ({type(exc).__name__}: {exc})"
            ) from exc


def difference(pd: Any, a: Any, b: Any) -> str | None:
    """What differs between ``a`` and its load ``b`` (None: equal, with dtypes, index and column types, names, freq,
    flags and attrs).  Column by column with vectorised ``equals`` (NaN equal to NaN), exact: no tolerance."""
    if type(a) is not type(b):
        return f"a {type(b).__name__} instead of a {type(a).__name__}"
    problem = _index_difference(a.index, b.index, "index")
    if problem:
        return problem
    if a.attrs != b.attrs:
        return f"attrs {b.attrs!r:.80} instead of {a.attrs!r:.80}"
    if a.flags.allows_duplicate_labels != b.flags.allows_duplicate_labels:
        return "flags.allows_duplicate_labels differs"
    if type(a) is pd.Series:
        if a.name != b.name and not (a.name is None and b.name is None):
            return f"name {b.name!r:.60} instead of {a.name!r:.60}"
        return _values_difference(a, b, "values")
    problem = _index_difference(a.columns, b.columns, "columns")
    if problem:
        return problem
    for i in range(a.shape[1]):
        problem = _values_difference(a.iloc[:, i], b.iloc[:, i], f"column {a.columns[i]!r:.60}")
        if problem:
            return problem
    return None


def _index_difference(a: Any, b: Any, what: str) -> str | None:
    if type(a) is not type(b):
        return f"{what}: a {type(b).__name__} instead of a {type(a).__name__}"
    if list(a.names) != list(b.names):
        return f"{what} names {list(b.names)!r:.80} instead of {list(a.names)!r:.80}"
    dtypes = (list(a.dtypes), list(b.dtypes)) if a.nlevels > 1 else ([a.dtype], [b.dtype])
    if dtypes[0] != dtypes[1]:
        return f"{what} dtype {dtypes[1]} instead of {dtypes[0]}"
    if getattr(a, "freq", None) != getattr(b, "freq", None):
        return f"{what} freq {getattr(b, 'freq', None)} instead of {getattr(a, 'freq', None)}"
    if not a.equals(b):
        return f"{what} values differ"
    return None


def _values_difference(a: Any, b: Any, what: str) -> str | None:
    if a.dtype != b.dtype:
        return f"{what}: dtype {b.dtype} instead of {a.dtype}"
    if not a.reset_index(drop=True).equals(b.reset_index(drop=True)):
        return f"{what}: values differ"
    return None


FORMAT = Parquet()
