"""Python stand-ins for Ruby values and Ruby's equality on them (SCOUT_FORMAT.md §2, §4.3, §5.2).

A ``str`` is a Ruby String, :class:`Symbol` a Symbol, :class:`ScoutPath` a Path, :class:`Step` a job reference,
:class:`RubyException` a decoded exception, :class:`TSV` a Scout TSV, ``None`` nil, ``list``/``tuple`` an Array and
``dict`` a Hash.  Every module that digests, stores, reads or compares Ruby values takes them from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


class Symbol(str):
    """A Ruby Symbol: digests as its bare name, but is not equal to a String in Ruby's eyes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Symbol({str.__repr__(self)})"


class ScoutPath(str):
    """A Ruby Path value (a ``:file``/``:path``/``asfile`` input): always digests as a path (§4.3), never as text."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ScoutPath({str.__repr__(self)})"


class Step:
    """A reference to a job by its path: digests as ``Step: identify(path)`` (§4.4)."""

    __slots__ = ("scout_step_path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.scout_step_path = os.fspath(path)

    def __repr__(self) -> str:
        return f"Step({self.scout_step_path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Step) and other.scout_step_path == self.scout_step_path

    def __hash__(self) -> int:
        return hash(("Step", self.scout_step_path))


@dataclass
class RubyException:
    """A decoded Ruby exception: its class name, message and backtrace (plus any other instance variables)."""

    ruby_class: str
    message: str
    backtrace: list[str] = field(default_factory=list)
    ivars: dict[str, Any] = field(default_factory=dict)

    @property
    def python_class(self) -> str | None:
        """The Python class name when scout-persist wrote the exception for a Python error."""
        return self.ivars.get("@python_class")

    @property
    def class_name(self) -> str:
        """The class to show: the Python class for errors written by scout-persist, else the Ruby class."""
        return self.python_class or self.ruby_class


@dataclass
class TSV:
    """A Scout TSV: ``data`` maps each key to its values (a list for ``list``, a list of lists for ``double``,
    one value for ``single``).  ``options`` are the extra ``#:`` preamble options (besides ``type``)."""

    key_field: str = "ID"
    fields: list[str] = field(default_factory=list)
    type: str = "list"
    data: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def ruby_eq(a: Any, b: Any) -> bool:
    """Ruby ``==`` on Python stand-ins: ``true != 1``, ``:a != "a"``, ``3 == 3.0``, element-wise containers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Symbol) or isinstance(b, Symbol):
        return isinstance(a, Symbol) and isinstance(b, Symbol) and str(a) == str(b)
    if isinstance(a, str) and isinstance(b, str):
        return str(a) == str(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(ruby_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        for k, v in a.items():
            match = [bv for bk, bv in b.items() if ruby_eq(bk, k)]
            if not match or not ruby_eq(v, match[0]):
                return False
        return True
    if hasattr(a, "scout_step_path") or hasattr(b, "scout_step_path"):
        return a is b or getattr(a, "scout_step_path", None) == getattr(b, "scout_step_path", object())
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001 - an __eq__ that raises: not equal
        return False


def same_as_default(value: Any, default: Any) -> bool:
    """§5.2: Ruby equality, plus a String and a Symbol with the same name."""
    if ruby_eq(value, default):
        return True
    if isinstance(value, str) and not isinstance(value, Symbol) and isinstance(default, Symbol):
        return str(value) == str(default)
    if isinstance(value, Symbol) and isinstance(default, str) and not isinstance(default, Symbol):
        return str(value) == str(default)
    return False


__all__ = ["RubyException", "ScoutPath", "Step", "Symbol", "TSV", "ruby_eq", "same_as_default"]
