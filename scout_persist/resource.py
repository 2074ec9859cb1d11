"""Ruby's Resource paths: ``identify`` (an absolute path as the logical path Ruby names it by, §4.4) and ``find``
(a logical path located through the maps, §1.1).  Below the digests: a ``Path`` value digests as its identified
path (:mod:`scout_persist.rubydigest`)."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable

from . import settings

PKGDIR = "scout"

# Ruby's Path.map_order without `current` (identify skips it), `workflow` (unset) and the install-specific
# library maps; `default` is `user` again and changes nothing.
DEFAULT_MAPS: tuple[tuple[str, str], ...] = (
    ("user", "{HOME}/.{PKGDIR}/{TOPLEVEL}/{SUBPATH}"),
    ("home", "{HOME}/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("local", "/usr/local/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("global", "/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("usr", "/usr/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("fast", "/fast/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("cache", "/cache/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("bulk", "/bulk/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("tmp", "/tmp/{PKGDIR}/{TOPLEVEL}/{SUBPATH}"),
)


def _map_regex(pattern: str) -> re.Pattern[str]:
    """Ruby identify's regex: {TOPLEVEL} a segment, .{PKGDIR} a dotted segment, other /{X} optional segments."""
    pieces: dict[str, str] = {}

    def mark(piece: str) -> str:
        key = f"\x00{len(pieces)}\x00"
        pieces[key] = piece
        return key

    pat = pattern.replace("{TOPLEVEL}", mark("(?P<TOPLEVEL>[^/]+)"))
    pat = re.sub(r"\.\{PKGDIR\}", lambda m: mark(r"\.(?P<PKGDIR>[^/]+)"), pat)
    pat = re.sub(r"/\{([^}]+)\}", lambda m: mark(f"(?:/(?P<{m.group(1)}>[^/]+))?"), pat)
    out = "".join(pieces.get(tok, re.escape(tok)) for tok in re.split(r"(\x00\d+\x00)", pat) if tok)
    return re.compile("^" + out + r"(?:/(?P<REST>.+))?/?$")


def identify(
    path: str | os.PathLike[str], home: str | None = None, maps: Iterable[tuple[str, str]] | None = None
) -> str:
    """Ruby ``Resource.identify``: the logical path of ``path`` (``var/jobs/W/t/name``), or the path itself.

    Unlocated paths come back unchanged; a path under no map keeps its absolute form with ``$HOME`` as ``~``.
    """
    p = os.fspath(path)
    if not p.startswith(("/", "~/", "./")):
        return p
    home = settings.home() if home is None else home
    home = home.rstrip("/") if home not in ("", "/") else home
    if p.startswith("/"):
        p = posixpath.normpath(p)
        if p.startswith("//"):
            p = "/" + p.lstrip("/")
    if os.path.isdir(p) and not p.endswith("/"):
        p += "/"
    choices: list[str] = []
    for _name, pattern in DEFAULT_MAPS if maps is None else maps:
        pattern = pattern.replace("{HOME}", home, 1)
        if "{" not in pattern:
            continue
        m = _map_regex(pattern).match(p)
        if not m:
            continue
        groups = m.groupdict()
        if "PKGDIR" in groups and groups["PKGDIR"] != PKGDIR:
            continue
        choices.append(
            "/".join(groups[g] for g in ("TOPLEVEL", "SUBPATH", "PATH", "REST") if groups.get(g) is not None)
        )
    identified = min(choices, key=len) if choices else p
    if home:
        identified = re.sub("^" + re.escape(home) + "(/|$)", lambda m: "~" + m.group(1), identified, count=1)
    return identified


_FIND_MAPS: tuple[str, ...] = (
    "{PWD}/{TOPLEVEL}/{SUBPATH}",
    "{HOME}/.{PKGDIR}/{TOPLEVEL}/{SUBPATH}",
    "{HOME}/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/usr/local/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/usr/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/fast/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/cache/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/bulk/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
)


def _follow(pattern: str, path: str, cwd: str, home: str) -> str:
    toplevel, _, subpath = path.partition("/")
    out = (
        pattern.replace("{PKGDIR}", PKGDIR, 1)
        .replace("{HOME}", home, 1)
        .replace("{PWD}", cwd, 1)
        .replace("{TOPLEVEL}", toplevel, 1)
        .replace("{SUBPATH}", subpath, 1)
    )
    return out[:-1] if not subpath and out.endswith("/") else out


def find(path: str, cwd: str | None = None, home: str | None = None) -> str:
    """Ruby ``Path#find`` (§1.1): a located path as is; a logical one through the maps (current dir first).

    The first candidate that exists (or has a ``.gz``/``.bgz``/``.zip`` sibling) wins; else the ``user`` map.
    """
    if path.startswith(("/", "~/", "./")):
        return path
    cwd = cwd or os.getcwd()
    home = settings.home() if home is None else home.rstrip("/")
    candidates = [_follow(m, path, cwd, home) for m in _FIND_MAPS]
    for c in candidates:
        if any(os.path.exists(c + sfx) for sfx in ("", ".gz", ".bgz", ".zip")):
            return c
    return candidates[1]


__all__ = ["DEFAULT_MAPS", "PKGDIR", "find", "identify"]
