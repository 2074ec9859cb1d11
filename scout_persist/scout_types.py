"""Result bytes per Scout type, exactly as Ruby writes them (SCOUT_FORMAT.md §7.2).

``dump(value, type) -> bytes`` and ``load(data, type, path=...)`` cover every Scout type: string, select, folder,
text, integer, float, boolean, array, ``X_array``, json (and ``serializer``, which is json), yaml, marshal, binary
(the default type), tsv, path, file, file_array.  ``load`` fixes two Ruby quirks on purpose: binary results come back
as the raw bytes (Ruby drops bytes >= 0x80) and text reads drop invalid UTF-8 as Ruby does.  Values with no Scout
type (type ``pickle``) go to the signed pickle envelope of :mod:`scout_persist.pickle_envelope`.
"""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import rubytext
from .errors import CorruptPayloadError, UnsupportedValueError
from .pickle_envelope import PICKLE, dump_pickle, load_pickle
from .ruby_marshal import dumps as marshal_dumps, loads as marshal_loads
from .rubyjson import dumps as json_dumps, ruby_float
from .rubytext import RUBY_WS, split_lines
from .rubyvalues import TSV, ScoutPath, Symbol

SCALAR_TYPES = ("string", "select", "folder", "text", "integer", "float", "boolean", "file", "path")
if TYPE_CHECKING:
    import yaml  # (a third of its import cost is C loaders only :yaml results need)

KNOWN_TYPES = (*SCALAR_TYPES, "array", "json", "serializer", "yaml", "marshal", "binary", "tsv", "file_array", "pickle")


def _tsv_opt_value(v: Any) -> str:
    if isinstance(v, Symbol):
        return ":" + v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def dump_tsv(t: TSV) -> bytes:
    opts = {"type": Symbol(t.type), **t.options}
    pre = "#".join(f":{k}={_tsv_opt_value(v)}" for k, v in sorted(opts.items()))
    lines = [f"#: {pre}", "#" + "\t".join([t.key_field, *t.fields])]
    for k, v in t.data.items():
        if t.type == "single":
            cells = [_text(v)]
        elif t.type == "double":
            cells = ["|".join(_text(x) for x in vals) for vals in v]
        elif t.type in ("list", "flat"):
            cells = [_text(x) for x in v] if t.type == "list" else ["|".join(_text(x) for x in v)]
        else:
            raise UnsupportedValueError(f"TSV type {t.type!r} is not one of list, single, double, flat")
        lines.append("\t".join([str(k), *cells]))
    return ("\n".join(lines) + "\n").encode("utf-8")


def load_tsv(text: str) -> TSV:
    t = TSV(fields=[])
    rows = text.split("\n")
    i = 0
    if rows and rows[0].startswith("#: "):
        for opt in rows[0][3:].split("#"):
            k, _, v = opt.partition("=")
            k = k.lstrip(":")
            val: Any = Symbol(v[1:]) if v.startswith(":") else v
            if k == "type":
                t.type = str(val)
            elif k:
                t.options[k] = val
        i = 1
    if i < len(rows) and rows[i].startswith("#"):
        header = rows[i][1:].split("\t")
        t.key_field, t.fields = header[0], header[1:]
        i += 1
    for line in rows[i:]:
        if line == "" or line.startswith("#"):
            continue
        key, *cells = line.split("\t")
        if t.type == "single":
            t.data[key] = cells[0] if cells else ""
        elif t.type == "double":
            t.data[key] = [c.split("|") if c else [] for c in cells]
        elif t.type == "flat":
            t.data[key] = cells[0].split("|") if cells and cells[0] else []
        else:
            t.data[key] = cells
    return t


# --------------------------------------------------------------------------------------------------- dump
def _text(v: Any) -> str:
    """Ruby ``to_s`` of a scalar."""
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return str(v)
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return ruby_float(v)
    if isinstance(v, (os.PathLike, pathlib.PurePath)):
        return os.fspath(v)
    if hasattr(v, "scout_step_path"):
        return str(getattr(v, "path", None) or v.scout_step_path)
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="surrogateescape")
    raise UnsupportedValueError(
        f"{type(v).__name__} value {v!r:.80} has no Scout text form; give a str, number, bool or path, "
        "or pick a type that holds it (json, yaml, marshal, pickle)"
    )


def _flatten(items: Any) -> list[Any]:
    out: list[Any] = []
    for x in items:
        if isinstance(x, (list, tuple)):
            out.extend(_flatten(x))
        else:
            out.append(x)
    return out


def dump(value: Any, type: str | None = "binary", **options: Any) -> bytes:
    """The bytes Ruby Scout writes for ``value`` as a result of ``type`` (None is the default type, binary)."""
    type = "binary" if type in (None, "") else str(type)
    if type == "serializer":
        type = "json"
    if type == "binary":
        raw = (
            value
            if isinstance(value, (bytes, bytearray, memoryview))
            else _text(value).encode("utf-8", "surrogateescape")
        )
        raw = bytes(raw)
        return raw if raw.endswith(b"\n") else raw + b"\n"
    if type in SCALAR_TYPES:
        if isinstance(value, (list, tuple, dict, set)):
            raise UnsupportedValueError(
                f"a {value.__class__.__name__} cannot be stored as Scout type "
                f"{type!r} (one scalar value); use array, json or yaml"
            )
        if type in ("path", "file") and isinstance(value, (str, os.PathLike)):
            return os.fspath(value).encode("utf-8")
        return _text(value).encode("utf-8", "surrogateescape")
    if type == "array":
        if not isinstance(value, (list, tuple)):
            raise UnsupportedValueError(
                f"Scout type 'array' needs a list, got {value.__class__.__name__} {value!r:.60}"
            )
        return "\n".join(_text(x) for x in _flatten(value)).encode("utf-8", "surrogateescape")
    if type == "json":
        return json_dumps(value).encode("utf-8")
    if type == "yaml":
        return dump_yaml(value)
    if type == "marshal":
        return marshal_dumps(value)
    if type == "tsv":
        if not isinstance(value, TSV):
            raise UnsupportedValueError(
                f"Scout type 'tsv' needs a scout_persist.TSV, got {value.__class__.__name__}; "
                "build TSV(key_field, fields, type, data)"
            )
        return dump_tsv(value)
    if type == PICKLE:
        return dump_pickle(value, **options)
    m = re.fullmatch(r"(.*)_array", type)
    if m:
        if not isinstance(value, (list, tuple)):
            raise UnsupportedValueError(f"Scout type {type!r} needs a list, got {value.__class__.__name__}")
        return b"\n".join(dump(x, m.group(1)) if m.group(1) != "binary" else bytes(x) for x in value)
    raise UnsupportedValueError(
        f"Scout type {type!r} is unknown (Ruby: 'Persist does not know :{type}'); known types: "
        f"{', '.join(KNOWN_TYPES)} and X_array"
    )


# --------------------------------------------------------------------------------------------------- load
def fix_utf8(data: bytes) -> str:
    """Ruby's ``Misc.fixutf8``: valid UTF-8 kept, invalid bytes dropped."""
    return data.decode("utf-8", errors="ignore")


def deserialize(text: str, type: str) -> Any:
    """Ruby ``Persist.deserialize`` of text already read."""
    try:
        return rubytext.deserialize(text, type)
    except LookupError:
        raise UnsupportedValueError(f"Scout type {type!r} is unknown; known types: {', '.join(KNOWN_TYPES)}") from None


def decompress_by_name(data: bytes, path: str | None) -> bytes:
    """Ruby decompresses by name: ``*.gz``/``*.bgz`` through gzip."""
    if path and re.search(r"\.b?gz$", path):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise CorruptPayloadError(f"{path} is named .gz but is not a complete gzip stream ({exc})") from exc
    return data


def load(
    data: bytes,
    type: str | None = "binary",
    path: str | None = None,
    relocate: Callable[[str], str] | None = None,
    record: dict[str, Any] | None = None,
    hmac_key: bytes | str | None = None,
    bind: str | None = None,
) -> Any:
    """The value of a result of ``type`` from its stored bytes.

    ``path`` is the result's location (a ``path`` result loads as it, ``./`` in ``file`` results resolves
    against its folder, a ``.gz`` name is decompressed); ``relocate`` maps stale absolute paths stored inside
    ``file``/``file_array`` results onto the current root; ``record`` (from ``.info``) verifies a pickle payload.
    """
    type = "binary" if type in (None, "") else str(type)
    if type == "serializer":
        type = "json"
    where = path or "<bytes>"
    data = decompress_by_name(bytes(data), path)
    # Our pickles say what they are: an envelope read without its .info record (e.g. mid-rerun) still decodes
    # Only the record or an explicit type says "pickle": stored bytes never decide that they get unpickled.
    if (record and record.get("serializer") == PICKLE) or type == PICKLE:
        return load_pickle(data, where, record=record, hmac_key=hmac_key, bind=bind)
    if type == "binary":
        return data
    if type == "marshal":
        return marshal_loads(data, where)
    text = fix_utf8(data)
    if type == "json":
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CorruptPayloadError(f"{where} should hold JSON (type json) but does not: {exc}") from exc
    if type == "yaml":
        return load_yaml(text, where)
    if type == "tsv":
        return load_tsv(text)
    relocate = relocate or (lambda p: p)
    if type == "path":
        return ScoutPath(path) if path else ScoutPath(text.strip(RUBY_WS))
    if type == "file":
        return _resolve_file(text, path, relocate)
    if type == "file_array":
        return [_resolve_line(line, path, relocate) for line in split_lines(text)]
    return deserialize(text, type)


def _resolve_line(line: str, path: str | None, relocate: Callable[[str], str]) -> str:
    if line.startswith("./") and path:
        return os.path.dirname(path) + line[1:]
    return relocate(line)


def _resolve_file(text: str, path: str | None, relocate: Callable[[str], str]) -> str:
    value = _resolve_line(text, path, relocate)
    if path is None or _exists(value):
        return value
    return path


def _exists(p: str) -> bool:
    try:
        return os.path.exists(p)
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------------------------------- YAML
def _yaml_classes() -> tuple[type[yaml.SafeDumper], type[yaml.SafeLoader]]:
    import yaml  # (a third of its import cost is C loaders only :yaml results need)

    class Dumper(yaml.SafeDumper):
        pass

    def rep_none(d: yaml.SafeDumper, _: None) -> yaml.ScalarNode:
        return d.represent_scalar("tag:yaml.org,2002:null", "")

    def rep_str(d: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
        s = str(s)
        plain_ok = True
        if s in ("y", "Y", "n", "N") or s.startswith(":") or s == "":
            plain_ok = False
        else:
            resolved = d.resolve(yaml.ScalarNode, s, (True, False))  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            plain_ok = resolved == "tag:yaml.org,2002:str"
        if plain_ok:
            return d.represent_scalar("tag:yaml.org,2002:str", s)
        return d.represent_scalar("tag:yaml.org,2002:str", s, style='"')

    def rep_sym(d: yaml.SafeDumper, s: Symbol) -> yaml.ScalarNode:
        return d.represent_scalar("tag:yaml.org,2002:str", ":" + str(s))

    def rep_float(d: yaml.SafeDumper, f: float) -> yaml.ScalarNode:
        return d.represent_scalar(
            "tag:yaml.org,2002:float",
            ruby_float(f)
            if f == f and abs(f) != float("inf")
            else (".nan" if f != f else (".inf" if f > 0 else "-.inf")),
        )

    Dumper.add_representer(type(None), rep_none)
    Dumper.add_representer(str, rep_str)
    Dumper.add_representer(Symbol, rep_sym)
    Dumper.add_representer(ScoutPath, rep_str)
    Dumper.add_representer(float, rep_float)

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("!scout/symbol", re.compile(r"^:[^\s:'\"].*$"), [":"])

    def con_sym(ld: yaml.SafeLoader, node: yaml.ScalarNode) -> Symbol:
        return Symbol(ld.construct_scalar(node)[1:])

    Loader.add_constructor("!scout/symbol", con_sym)
    return Dumper, Loader


_YAML: tuple[type[yaml.SafeDumper], type[yaml.SafeLoader]] | None = None


def dump_yaml(value: Any) -> bytes:
    """Psych-style YAML: ``---`` header, Symbols as ``:name``, null as an empty value, y/n/yes/on quoted."""
    import yaml  # (a third of its import cost is C loaders only :yaml results need)

    global _YAML
    _YAML = _YAML or _yaml_classes()
    try:
        text = yaml.dump(
            value,
            Dumper=_YAML[0],
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
            explicit_start=True,
            width=10**9,
        )
    except yaml.YAMLError as exc:
        raise UnsupportedValueError(f"{value.__class__.__name__} value cannot be written as YAML: {exc}") from exc
    # PyYAML writes "key: " before an empty null; Psych writes "key:"
    return re.sub(r": \n", ":\n", text).encode("utf-8")


def load_yaml(text: str, where: str = "") -> Any:
    import yaml  # (a third of its import cost is C loaders only :yaml results need)

    global _YAML
    _YAML = _YAML or _yaml_classes()
    try:
        return yaml.load(text, Loader=_YAML[1])  # noqa: S506 (a SafeLoader subclass)
    # PyYAML's constructors fail with plain errors on text its scanner accepted (a UTC offset with seconds)
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise CorruptPayloadError(f"{where} should hold YAML (type yaml) but does not: {exc}") from exc
