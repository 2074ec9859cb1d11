"""scout-persist: Ruby Scout's persistence layer in Python (job layout, .info, persist cache, any fsspec store).

Public names load lazily so that ``import scout_persist`` stays cheap (no s3fs, prefect or matplotlib).
"""

from __future__ import annotations

from importlib import import_module

from .errors import *  # noqa: F401,F403  (the error hierarchy is tiny and always needed)
from .errors import ScoutPersistError

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "Symbol": "digest",
    "digest_str": "digest",
    "digest": "digest",
    "sanitize_filename": "digest",
    "Store": "store",
    "Job": "job",
    "persist": "persist",
    "save": "outputs",
    "load": "outputs",
    "exists": "outputs",
    "invalidate": "outputs",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scout_persist' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = ["ScoutPersistError", *_EXPORTS]
