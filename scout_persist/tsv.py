"""Scout TSV tables <-> pandas: a DataFrame returned as ``type="tsv"`` is written with Ruby's TSV bytes, and TSV
results (Ruby's and ours) load as DataFrames (``Job.load(as_="pandas")``).

Writing (SCOUT_FORMAT.md §7.2): the ``#: `` preamble of sorted ``:key=value`` options, the header
``#<key field>\\t<field>...`` and one row per key, cells as Ruby's ``to_s`` writes them (``true``/``false``, integers,
Ruby float notation ``1.0e-07``, empty for a missing value).  The index is the key field (its name, else ``ID``),
the columns are the fields.  A frame whose every cell is a list is a ``double`` TSV (values joined with ``|``), a
Series a ``single`` one.  Options and the TSV type of a table loaded from a TSV travel in ``df.attrs["scout_tsv"]``,
so a table read from Ruby's TSV and written back gives Ruby's bytes again.

Reading: without a record (Ruby's jobs) every cell is a ``str`` (Ruby's TSV values are strings); with our record
(``payload["pandas"]``: index and column names and dtypes, attrs) the dtypes come back, and a frame that would not
come back equal is refused when it is written (:func:`payload.encode`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from .errors import InvalidInputError, MissingDependencyError, UnsupportedValueError
from .rubyjson import ruby_float
from .rubyvalues import TSV, Symbol
from .scout_types import dump_tsv, load_tsv

ATTRS_KEY = "scout_tsv"  # df.attrs entry: {"type": "list", "options": {name: raw text}}
DEFAULT_KEY_FIELD = "ID"
DEFAULT_FIELD = "Value"  # the field of a single TSV from a Series without a name


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    try:
        import pandas as pd  # optional (frames extra)

        return v is pd.NA or v is pd.NaT
    except ImportError:  # pragma: no cover - callers hold pandas values
        return False


def cell_text(v: Any, where: str) -> str:
    """Ruby's ``to_s`` of a cell value (numpy scalars as their Python value); refuses text that breaks the table."""
    if hasattr(v, "item") and type(v).__module__ == "numpy":
        v = v.item()
    if _missing(v):
        return ""
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return ruby_float(v)
    text = v if isinstance(v, str) else str(v)
    if "\t" in text or "\n" in text:
        raise UnsupportedValueError(
            f"{where}: the cell {text!r:.60} holds a tab or a newline, which a TSV cannot; replace them, or declare "
            "type=None (Parquet)"
        )
    return text


def _options_of(attrs: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    saved = attrs.get(ATTRS_KEY) if isinstance(attrs, Mapping) else None
    if not isinstance(saved, Mapping):
        return None, {}
    options = {}
    for k, raw in (saved.get("options") or {}).items():
        raw = str(raw)
        options[str(k)] = Symbol(raw[1:]) if raw.startswith(":") else raw
    return (str(saved["type"]) if saved.get("type") else None), options


def _json_safe(value: Any, what: str, where: str) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UnsupportedValueError(
            f"{where}: {what} {value!r:.80} is not JSON data, so it cannot be kept with the table ({exc}); use str, "
            "int, float or bool values, or declare type=None (Parquet)"
        ) from None
    return value


def dump_frame(value: Any, where: str) -> tuple[bytes, dict[str, Any]]:
    """``(TSV bytes, record)`` of a DataFrame or Series; the record lets :func:`load_frame` restore the dtypes."""
    import pandas as pd  # optional (frames extra)

    if type(value) is pd.Series:
        frame = value.to_frame(name=DEFAULT_FIELD if value.name is None else value.name)
        kind = "series"
    elif type(value) is pd.DataFrame:
        frame = value
        kind = "frame"
    else:
        raise UnsupportedValueError(f"{where}: a {type(value).__name__} is not a pandas DataFrame or Series")
    if isinstance(frame.index, pd.MultiIndex) or isinstance(frame.columns, pd.MultiIndex):
        raise UnsupportedValueError(
            f"{where}: a TSV has one key field and flat field names; reset the MultiIndex (df.reset_index()), or "
            "declare type=None (Parquet)"
        )
    names = list(frame.columns)
    if not all(isinstance(n, str) for n in names):
        raise UnsupportedValueError(
            f"{where}: TSV field names are text; the columns {[n for n in names if not isinstance(n, str)]!r:.80} are "
            "not str; rename them (df.columns = df.columns.astype(str)), or declare type=None (Parquet)"
        )
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        raise UnsupportedValueError(
            f"{where}: the key {dup!r:.60} appears more than once; Scout TSV keys are unique (a Ruby hash); make "
            "the index unique, or declare type=None (Parquet)"
        )
    saved_type, options = _options_of(value.attrs)
    columns = [frame[c].tolist() for c in names]
    lists = [all(isinstance(x, (list, tuple)) for x in col) for col in columns]
    if len(names) == 1 and saved_type == "flat" and lists[0]:
        tsv_type = "flat"
    elif len(names) == 1 and (kind == "series" or saved_type == "single") and not lists[0]:
        tsv_type = "single"
    elif names and all(lists) and frame.shape[0]:
        tsv_type = "double"
    else:
        tsv_type = "list"
    if tsv_type == "list" and any(any(isinstance(x, (list, tuple)) for x in col) for col in columns):
        raise UnsupportedValueError(
            f"{where}: some cells are lists and others not; a double TSV has a list in every cell: make every cell a "
            "list, or declare type=None (Parquet)"
        )
    keys = [cell_text(k, where) for k in frame.index.tolist()]
    data: dict[str, Any] = {}
    for i, key in enumerate(keys):
        if tsv_type == "double":
            data[key] = [[_list_item(x, where) for x in col[i]] for col in columns]
        elif tsv_type == "flat":
            data[key] = [_list_item(x, where) for x in columns[0][i]]
        elif tsv_type == "single":
            data[key] = cell_text(columns[0][i], where)
        else:
            data[key] = [cell_text(col[i], where) for col in columns]
    key_field = DEFAULT_KEY_FIELD if frame.index.name is None else cell_text(frame.index.name, where)
    table = TSV(key_field=key_field, fields=[str(n) for n in names], type=tsv_type, data=data, options=options)
    index = frame.index
    meta: dict[str, Any] = {
        "kind": kind,
        "index": {"name": _json_safe(index.name, "the index name", where), "dtype": str(index.dtype)},
        "columns": [[n, str(frame[n].dtype)] for n in names],
    }
    if isinstance(index, pd.RangeIndex):
        meta["index"]["range"] = [index.start, index.stop, index.step]
    if kind == "series":
        meta["series_name"] = _json_safe(value.name, "the Series name", where)
    if value.attrs:
        meta["attrs"] = _json_safe(dict(value.attrs), "df.attrs", where)
    return dump_tsv(table), meta


def _list_item(x: Any, where: str) -> str:
    text = cell_text(x, where)
    if "|" in text:
        raise UnsupportedValueError(
            f"{where}: the list value {text!r:.60} holds '|', which separates values in a double TSV; replace it, or "
            "declare type=None (Parquet)"
        )
    return text


def _typed(values: list[str], dtype: str) -> Any:
    """TSV text cells as a column of ``dtype`` (the record's); unknown dtypes are left to pandas."""
    import numpy as np  # optional (arrays extra)
    import pandas as pd  # optional (frames extra)

    try:
        target = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return pd.array(values)
    kind = getattr(target, "kind", "O")
    if isinstance(target, np.dtype) and kind == "b":
        return np.array([v == "true" for v in values], dtype=target)
    if isinstance(target, np.dtype) and kind in "iu":
        return np.array([int(v) for v in values], dtype=target)
    if isinstance(target, np.dtype) and kind == "f":
        return np.array([float(v) if v else math.nan for v in values], dtype=target)
    if isinstance(target, np.dtype) and kind == "O":
        return np.array(values, dtype=object)
    if isinstance(target, pd.StringDtype):  # Ruby writes nil as an empty cell
        return pd.array([None if v == "" else v for v in values], dtype=target)
    if kind in "iufb" and not isinstance(target, np.dtype):  # nullable Int64, Float64, boolean
        parse: Callable[[str], Any] = {"b": lambda v: v == "true", "f": float}.get(kind, int)
        return pd.array([None if v == "" else parse(v) for v in values], dtype=target)
    return pd.Series(values, dtype=object).astype(target).array


def load_frame(data: bytes, meta: Mapping[str, Any], where: str) -> Any:
    """The DataFrame (or Series) of TSV ``data`` written by :func:`dump_frame` with its record ``meta``."""
    import pandas as pd  # optional (frames extra)

    table = load_tsv(data.decode("utf-8", errors="ignore"))
    keys = list(table.data)
    idx = meta.get("index") or {}
    if idx.get("range") is not None:
        start, stop, step = idx["range"]
        index = pd.RangeIndex(start, stop, step, name=idx.get("name"))
    else:
        index = pd.Index(_typed(keys, str(idx.get("dtype") or "object")), name=idx.get("name"))
    columns = meta.get("columns") or []
    rows = [table.data[k] for k in keys]
    cols: dict[str, Any] = {}
    for i, (name, dtype) in enumerate(columns):
        texts: list[Any]
        if table.type == "single":
            texts = [r if isinstance(r, str) else "" for r in rows]
        elif table.type == "flat":
            texts = [list(r) for r in rows]
        else:
            texts = [r[i] if i < len(r) else "" for r in rows]
        if table.type in ("double", "flat"):
            cols[name] = pd.Series(texts, index=index, dtype=object)
        else:
            cols[name] = pd.Series(_typed(texts, dtype), index=index)
    frame = pd.DataFrame(cols, index=index)
    if not columns:
        frame = pd.DataFrame(index=index)
    if meta.get("kind") == "series":
        out = frame.iloc[:, 0]
        out.name = meta.get("series_name")
    else:
        out = frame
    attrs = meta.get("attrs")
    if attrs:
        out.attrs = dict(attrs)
    return out


def frame_of(table: TSV) -> Any:
    """A Scout TSV (Ruby's, without a record) as a DataFrame: the keys are the index (named by the key field),
    each field a column of ``str`` (lists of ``str`` for ``double``/``flat``); type and options go to ``attrs``."""
    import pandas as pd  # optional (frames extra)

    keys = list(table.data)
    index = pd.Index(keys, name=table.key_field)
    fields = list(table.fields) or ([DEFAULT_FIELD] if table.type in ("single", "flat") else [])
    cols: dict[str, Any] = {}
    for i, name in enumerate(fields):
        if table.type == "single":
            cols[name] = [table.data[k] for k in keys]
        elif table.type == "flat":
            cols[name] = pd.Series([list(table.data[k]) for k in keys], index=index, dtype=object)
        else:
            cells = [table.data[k][i] if i < len(table.data[k]) else ("" if table.type == "list" else []) for k in keys]
            cols[name] = pd.Series(cells, index=index, dtype=object) if table.type == "double" else cells
    frame = pd.DataFrame(cols, index=index) if cols else pd.DataFrame(index=index)
    options = {k: (":" + v if isinstance(v, Symbol) else str(v)) for k, v in table.options.items()}
    frame.attrs[ATTRS_KEY] = {"type": table.type, "options": options}
    return frame


def as_pandas(value: Any, where: str) -> Any:
    """A loaded result as a pandas value (see ``Job.load(as_="pandas")``)."""

    try:
        import pandas as pd  # optional (frames extra)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{where}: load(as_='pandas') needs pandas, which is not installed; install it: pip install "
            "'scout-persist[frames]'"
        ) from exc
    if isinstance(value, TSV):
        return frame_of(value)
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value
    module = type(value).__module__.split(".")[0]
    if module == "pyarrow" and hasattr(value, "to_pandas"):
        return value.to_pandas()
    if module == "numpy" and getattr(value, "ndim", 0) in (1, 2):
        return pd.DataFrame(value)
    if isinstance(value, list) and all(isinstance(x, dict) for x in value):
        return pd.DataFrame(value)
    if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
        return pd.DataFrame(value)
    raise InvalidInputError(
        f"{where}: its {type(value).__name__} result has no pandas form; as_='pandas' reads TSV, Parquet and Arrow "
        "results, arrays of 1 or 2 dimensions and JSON records; load() it as it is"
    )


__all__ = ["ATTRS_KEY", "as_pandas", "cell_text", "dump_frame", "frame_of", "load_frame"]
