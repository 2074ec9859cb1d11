"""scout-persist: Ruby Scout's persistence layer in Python (job layout, .info, persist cache, any fsspec store).

Public names load on first use so that ``import scout_persist`` stays cheap (no fsspec, s3fs, prefect or matplotlib).
No submodule has the name of a public function or class, so importing a submodule can never shadow one
(``from scout_persist import persist, digest`` always gives the functions).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (  # public: listed in __all__ (through _ERRORS)
    ClassNotImportable as ClassNotImportable,
    CorruptPayloadError as CorruptPayloadError,
    FormatVersionError as FormatVersionError,
    InfoFormatError as InfoFormatError,
    InvalidInputError as InvalidInputError,
    JobFailed as JobFailed,
    JobNotFound as JobNotFound,
    KeyNotFound as KeyNotFound,
    LeaseLost as LeaseLost,
    LockTimeout as LockTimeout,
    MissingDependencyError as MissingDependencyError,
    PickleKeyError as PickleKeyError,
    PickleNotAllowed as PickleNotAllowed,
    ScoutPersistError as ScoutPersistError,
    StorageError as StorageError,
    UnsafePathError as UnsafePathError,
    UnsupportedValueError as UnsupportedValueError,
    UntrustedPayloadError as UntrustedPayloadError,
)

if TYPE_CHECKING:  # what __getattr__ below loads on first use, as type checkers see it
    from .job import Job as Job, JobWriter as JobWriter
    from .outputs import exists as exists, invalidate as invalidate, load as load, save as save
    from .persist_cache import persist as persist, workflow_persist as workflow_persist
    from .rubydigest import digest as digest, digest_str as digest_str, sanitize_filename as sanitize_filename
    from .rubyvalues import (
        TSV as TSV,
        RubyException as RubyException,
        ScoutPath as ScoutPath,
        Step as Step,
        Symbol as Symbol,
    )
    from .store import Store as Store

__version__ = "0.1.0"

# public name -> the submodule that defines it
_EXPORTS = {
    "Symbol": "rubyvalues",
    "ScoutPath": "rubyvalues",
    "Step": "rubyvalues",
    "TSV": "rubyvalues",
    "RubyException": "rubyvalues",
    "digest_str": "rubydigest",
    "digest": "rubydigest",
    "sanitize_filename": "rubydigest",
    "Store": "store",
    "Job": "job",
    "JobWriter": "job",
    "persist": "persist_cache",
    "workflow_persist": "persist_cache",
    "save": "outputs",
    "load": "outputs",
    "exists": "outputs",
    "invalidate": "outputs",
}

_ERRORS = [
    "ClassNotImportable",
    "CorruptPayloadError",
    "FormatVersionError",
    "InfoFormatError",
    "InvalidInputError",
    "JobFailed",
    "JobNotFound",
    "KeyNotFound",
    "LeaseLost",
    "LockTimeout",
    "MissingDependencyError",
    "PickleKeyError",
    "PickleNotAllowed",
    "ScoutPersistError",
    "StorageError",
    "UnsafePathError",
    "UnsupportedValueError",
    "UntrustedPayloadError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scout_persist' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [*_EXPORTS, *_ERRORS]
