"""The compression spec (``$SCOUT_PERSIST_COMPRESSION`` or a caller's ``spec``): ``auto``, ``zstd[:<level>]``,
``none``; what it means for opaque bytes (:func:`bytes_codec`).  What it means for the parts of a pickle envelope is
:func:`scout_persist.envelope_parts.part_codec`."""

from __future__ import annotations

from . import settings
from .errors import InvalidInputError

ENV_VAR = settings.COMPRESSION.name
DEFAULT_SPEC = "auto"

SPEC_HELP = "'auto' (the default), 'zstd', 'zstd:<level 1-22>' (e.g. 'zstd:19') or 'none'"
# What 'auto' gives bytes that are not fixed-width array data, and what it falls back to without Blosc2.
AUTO_ZSTD_LEVEL = 3


def parse_spec(spec: str | None = None) -> tuple[str, int | None]:
    """``"zstd:3"`` -> ``("zstd", 3)``, ``"zstd"`` -> ``("zstd", 3)``, ``"none"`` -> ``("none", None)``,
    ``"auto"`` -> ``("auto", None)``.

    ``None`` reads ``$SCOUT_PERSIST_COMPRESSION`` (default ``auto``: Blosc2 for array data, zstd:3 for the rest).
    """
    source = "compression spec"
    if spec is None:
        spec = settings.compression() or DEFAULT_SPEC
        source = f"${ENV_VAR}"
    if not isinstance(spec, str):
        raise InvalidInputError(f"{source} {spec!r} is a {type(spec).__name__}; use a string: {SPEC_HELP}")
    text = spec.strip().lower()
    if text in ("none", "plain", "off"):
        return "none", None
    if text == "auto":
        return "auto", None
    codec, _, level_text = text.partition(":")
    if codec != "zstd":
        raise InvalidInputError(f"{source} {spec!r} names an unknown codec {codec!r}; use {SPEC_HELP}")
    if not level_text:
        return "zstd", 3
    try:
        level = int(level_text)
    except ValueError:
        level = 0
    if not 1 <= level <= 22:
        raise InvalidInputError(
            f"{source} {spec!r} has zstd level {level_text!r}; zstd levels are integers 1-22 (e.g. 'zstd:19'); "
            f"use {SPEC_HELP}"
        )
    return "zstd", level


def bytes_codec(spec: str | None) -> tuple[str, int | None]:
    """The codec of an opaque byte payload (no item size to shuffle by): ``auto`` is zstd:3."""
    codec, level = parse_spec(spec)
    return ("zstd", AUTO_ZSTD_LEVEL) if codec == "auto" else (codec, level)
