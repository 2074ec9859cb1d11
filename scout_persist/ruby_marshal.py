"""Ruby Marshal 4.8 values as Python values, through the ``rubymarshal`` library.

Reading: Symbols become :class:`scout_persist.rubyvalues.Symbol`, encoded Strings ``str``, binary Strings ``bytes``,
Hashes ``dict`` (a Hash with a default value keeps the pairs), exceptions :class:`RubyException`; any other object
stays a ``rubymarshal`` object.  Writing: the reverse for the values Scout stores (results of type ``marshal`` and the
``exception`` blob of a ``.info``).
"""

from __future__ import annotations

import io
from typing import Any

from .errors import CorruptPayloadError, UnsupportedValueError
from .rubyvalues import RubyException, Symbol

MAGIC = b"\x04\x08"
_INTERNAL_IVARS = {"cause"}


def is_marshal(data: bytes) -> bool:
    return data[:2] == MAGIC


def _reader_class() -> type[Any]:
    """rubymarshal's Reader plus what Scout data holds and it lacks: Hash with default (``}``), Hash/Array
    subclasses such as IndiferentHash (``C``) and Structs (``S``)."""
    from rubymarshal.classes import RubyObject  # lazy: only Ruby Marshal data needs it
    from rubymarshal.reader import Reader

    class ScoutReader(Reader):  # type: ignore[misc]  # rubymarshal has no type hints
        def read(self, in_ivar: bool = False) -> Any:
            token = self.fd.read(1)
            if token == b"}":
                index = len(self.objects)
                self.objects.append(None)
                result: dict[Any, Any] = {}
                self.objects[index] = result
                for _ in range(self.read_long()):
                    key = self.ensure_hashable(self.read())
                    result[key] = self.read()
                self.read()  # the default value: Python dicts have none, the pairs are the data
            elif token == b"C":
                self.read()  # the subclass name (IndiferentHash, ...): the value is its Hash/Array/String
                return self.read(in_ivar=in_ivar)
            elif token == b"S":
                index = len(self.objects)
                self.objects.append(None)
                name = self.read()
                members: dict[str, Any] = {}
                for _ in range(self.read_long()):
                    member = self.read()
                    members[getattr(member, "name", str(member))] = self.read()
                result = RubyObject(getattr(name, "name", str(name)), members)
                self.objects[index] = result
            else:
                if token:
                    self.fd.seek(-1, 1)
                return super().read(in_ivar=in_ivar)
            if in_ivar:
                self.read_attributes()
            return result

    return ScoutReader


_READER = None


def _rm_loads(data: bytes) -> Any:

    global _READER
    _READER = _READER or _reader_class()
    reader = _READER(io.BytesIO(data))
    if reader.fd.read(2) != MAGIC:
        raise ValueError("bad Marshal version")
    return reader.read()


def loads(data: bytes, where: str = "") -> Any:
    """Decode Ruby Marshal bytes; CorruptPayloadError naming ``where`` when they are not Marshal 4.8."""
    rm_loads = _rm_loads

    if not is_marshal(data):
        raise CorruptPayloadError(
            f"{where or 'payload'} is not Ruby Marshal 4.8 (starts {data[:2]!r}, expected b'\\x04\\x08'); "
            "it was written by something else or is damaged"
        )
    try:
        return to_python(rm_loads(data))
    except RecursionError as exc:
        raise CorruptPayloadError(f"{where or 'payload'}: Ruby Marshal nests too deeply to decode") from exc
    except Exception as exc:  # rubymarshal raises bare ValueError/IndexError/struct.error on damage
        raise CorruptPayloadError(
            f"{where or 'payload'} is not a readable Ruby Marshal dump ({type(exc).__name__}: {exc}); "
            "the file is truncated or was not written by Ruby"
        ) from exc


def to_python(obj: Any, _seen: dict[int, Any] | None = None) -> Any:
    """Map ``rubymarshal`` objects onto the Python stand-ins for Ruby values used across scout-persist."""
    from rubymarshal.classes import RubyObject, RubyString, Symbol as RMSymbol  # lazy: only Ruby Marshal data needs it

    seen = {} if _seen is None else _seen
    if id(obj) in seen:
        return seen[id(obj)]
    if isinstance(obj, RMSymbol):
        return Symbol(obj.name)
    if isinstance(obj, RubyString):
        return str(obj.text)
    if isinstance(obj, (str, bytes, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, list):
        out: list[Any] = []
        seen[id(obj)] = out
        out.extend(to_python(x, seen) for x in obj)
        return out
    if isinstance(obj, dict):
        d: dict[Any, Any] = {}
        seen[id(obj)] = d
        for k, v in obj.items():
            d[to_python(k, seen)] = to_python(v, seen)
        return d
    if isinstance(obj, RubyObject) and isinstance(obj.attributes, dict) and "mesg" in obj.attributes:
        attrs = {k: to_python(v, seen) for k, v in obj.attributes.items()}
        mesg = attrs.pop("mesg", None)
        bt = attrs.pop("bt", None) or []
        attrs.pop("bt_locations", None)
        return RubyException(str(obj.ruby_class_name), "" if mesg is None else str(mesg), list(bt), attrs)
    return obj


def dumps(value: Any) -> bytes:
    """Ruby Marshal 4.8 of a Python value (str -> UTF-8 String, bytes -> binary String, Symbol -> Symbol, ...)."""
    from rubymarshal.writer import writes  # lazy: only Ruby Marshal data needs it

    try:
        data: bytes = writes(_to_ruby(value))
        return data
    except (ValueError, TypeError) as exc:
        raise UnsupportedValueError(
            f"cannot write {type(value).__name__} value {value!r:.80} as Ruby Marshal ({exc}); Marshal holds "
            "str, bytes, int, float, bool, None, Symbol, list and dict; use the 'pickle' serializer for others"
        ) from exc


def _to_ruby(value: Any) -> Any:
    from rubymarshal.classes import Symbol as RMSymbol  # lazy: only Ruby Marshal data needs it

    if isinstance(value, Symbol):
        return RMSymbol(str(value))
    if isinstance(value, tuple):
        return [_to_ruby(v) for v in value]
    if isinstance(value, list):
        return [_to_ruby(v) for v in value]
    if isinstance(value, dict):
        return {_to_ruby(k): _to_ruby(v) for k, v in value.items()}
    if isinstance(value, RubyException):
        return _exception_object(value)
    if isinstance(value, str) and type(value) is not str:
        return str(value)
    return value


def _exception_object(exc: RubyException) -> Any:  # a rubymarshal RubyObject
    from rubymarshal.classes import RubyObject, RubyString  # lazy: only Ruby Marshal data needs it

    bt = [RubyString(line, {"E": True}) for line in exc.backtrace]
    attrs: dict[str, Any] = {"mesg": RubyString(exc.message, {"E": True}), "bt": bt}
    # Ruby 3.1 dumps bt_locations as a link to the very same backtrace array.
    attrs["bt_locations"] = bt
    for k, v in exc.ivars.items():
        # Ruby-internal ivars (``cause``) have no '@'; user ivars always do.
        attrs[k if k.startswith("@") or k in _INTERNAL_IVARS else "@" + k] = _to_ruby(v)
    return RubyObject(exc.ruby_class, attrs)


def dump_exception(exc: RubyException) -> bytes:
    """Marshal bytes of an exception shaped as Ruby 3.1 dumps one (mesg, bt, bt_locations)."""
    from rubymarshal.writer import writes  # lazy: only Ruby Marshal data needs it

    data: bytes = writes(_exception_object(exc))
    return data
