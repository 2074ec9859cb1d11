"""Where CLI output goes and whether it is coloured (a terminal, unless --nocolor; always with --color)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import settings


def use_color(args: argparse.Namespace) -> bool:
    """Colour when writing to a terminal, like Ruby Scout; ``--nocolor`` / ``NO_COLOR`` turn it off, ``--color`` on."""
    if getattr(args, "color", False):
        return True
    if getattr(args, "nocolor", False) or settings.no_color():
        return False
    return sys.stdout.isatty()


def emit(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def warn(msg: str) -> None:
    sys.stderr.write(msg + "\n")
