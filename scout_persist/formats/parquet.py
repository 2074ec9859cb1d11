"""``parquet``: a pandas DataFrame or Series as Parquet (pyarrow), index, dtypes, names and ``attrs`` kept.

Parquet compresses its own column chunks, so the compression spec goes inside the file (``zstd:3`` -> Parquet
zstd level 3, ``none`` -> uncompressed) and the stored bytes are a plain ``.parquet`` file any tool reads.
Encoding decodes the bytes once and compares them with the value (:func:`scout_persist.equality.difference`: class,
values to the bit, dtypes, index and its dtype, columns and their name, categories and their order, element types of
object columns, ``attrs``, flags, ``freq``, tz): a frame Parquet cannot hold exactly (mixed-type object columns,
non-string column names, a ``DatetimeIndex`` with a ``freq``, Decimals of several scales in one column, ``attrs``
that are not JSON data, ...) is refused, so what the first run hands on equals what every cached run gets.

Record: ``{"format": "parquet", "version": 1, "codec": "none", "compression": "zstd:3", "kind": "frame"|"series",
"series_name", "stored_size", "checksum"}``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from typing import Any

from ..checksums import checksum
from ..equality import difference
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
        elif not isinstance(value.columns, pd.MultiIndex) and not all(type(c) is str for c in value.columns):
            raise UnsupportedValueError(
                f"a DataFrame with column names {[c for c in value.columns if type(c) is not str]!r:.60} cannot be "
                "stored as parquet: Parquet column names are text, and a cache hit would give back str names; "
                "rename them (df.columns = df.columns.astype(str)), or declare format='pickle'"
            )
        codec, level = compression(spec)
        options: dict[str, Any] = (
            {"compression": None} if codec == "none" else {"compression": codec, "compression_level": level}
        )
        buf = io.BytesIO()
        try:
            with warnings.catch_warnings():  # "... will be converted to string": the comparison below decides
                warnings.simplefilter("ignore", UserWarning)
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
            checksum=checksum(data),
        )
        try:
            back = self._frame(data, record, where)
        except Exception as exc:  # pyarrow refuses its own file (e.g. a column and an index of one name)
            raise UnsupportedValueError(
                f"a {type(value).__name__} cannot be stored as parquet: the file written does not load back "
                f"({type(exc).__name__}: {exc!s:.120}); give the index and the columns distinct str names, or declare "
                "format='pickle'"
            ) from exc
        problem = difference(value, back)
        if problem:
            raise UnsupportedValueError(
                f"a {type(value).__name__} cannot be stored as parquet without change: a cache hit would give "
                f"back a different value ({problem}); convert the columns (e.g. df.astype(...)), or declare "
                "format='pickle'"
            )
        del back  # indistinguishable: the value itself is handed on (no second frame kept alive)
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


FORMAT = Parquet()
