"""One root for every error of scout-persist; each also inherits the builtin a caller already catches.

Messages name the value, the rule and the fix, e.g.
``job name '../x' escapes the jobs root 's3://b/var/jobs'; job names may not contain '..' path segments``.
"""

from __future__ import annotations


class ScoutPersistError(Exception):
    """Root of every error raised by scout-persist."""


class UnsupportedValueError(ScoutPersistError, TypeError):
    """A value has no Scout meaning (e.g. an object digest_str cannot render)."""


class InvalidInputError(ScoutPersistError, ValueError):
    """An input value or declaration breaks a Scout rule (type, required, select options)."""


class UnsafePathError(ScoutPersistError, ValueError):
    """A name or key would escape its root, or contains bytes no store can hold."""


class JobNotFound(ScoutPersistError, FileNotFoundError):
    """No job (result nor .info) at the given path."""


class KeyNotFound(ScoutPersistError, FileNotFoundError):
    """No stored entry under the given key."""


class InfoFormatError(ScoutPersistError, ValueError):
    """A .info file that is neither Scout JSON nor Ruby Marshal, or is truncated."""


class CorruptPayloadError(ScoutPersistError, OSError):
    """A stored payload fails its checksum, its codec or its serializer: never returned as data."""


class UntrustedPayloadError(ScoutPersistError, PermissionError):
    """A pickled payload lacks a valid HMAC under SCOUT_PERSIST_HMAC_KEY."""


class StorageError(ScoutPersistError, OSError):
    """A backend failed in a way that is not 'not found'; the cause is chained."""


class LockTimeout(ScoutPersistError, TimeoutError):
    """A lock could not be taken within the allowed time."""


class LeaseLost(ScoutPersistError, RuntimeError):
    """This process's lock or lease was taken over (it was paused or cut off past its lease): its commit is refused,
    so the newer holder's work stands."""


class JobFailed(ScoutPersistError, RuntimeError):
    """A job ended in status error (or aborted): it has no result to load; ``.exception`` says why."""


class MissingDependencyError(ScoutPersistError, ImportError):
    """A stored payload needs an optional library that is not installed (the message names the install)."""


class ClassNotImportable(ScoutPersistError, ImportError):
    """A stored value names a class this process cannot import (e.g. one defined in a script run as ``__main__``):
    the bytes are fine, the code is missing here; the message names the class and the fix."""


class FormatVersionError(ScoutPersistError, ValueError):
    """A payload was written by a newer version of its format than this scout-persist reads."""


class PickleKeyError(ScoutPersistError, PermissionError):
    """The pickle key is there but cannot be used (too short, not a private file of this account, unreadable, or it
    cannot be made): no pickle is written or read until it is fixed, never an unsigned one instead."""


class PickleNotAllowed(UntrustedPayloadError):
    """``SCOUT_PERSIST_ALLOW_PICKLE=0``: pickles are neither written nor read (stores shared with untrusted writers)."""
