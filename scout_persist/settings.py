"""Every environment variable scout-persist reads, read here and nowhere else, each checked where it is read.

Values are read when they are needed (a test or a long-running process may change the environment), never cached at
import.  A value that breaks its rule raises :class:`InvalidInputError` naming the variable, the value, the rule and
the fix.  Three values have a grammar of their own and are checked by the concept that owns it, which names the
variable in its message: the store root (:func:`scout_persist.store.store_url`), the codec spec
(:func:`scout_persist.codec_spec.parse_spec`) and the HMAC key (:mod:`scout_persist.pickle_key`).

:data:`VARIABLES` lists them all, with their defaults and meanings; the table in ``docs/getting-started.md`` is
checked against it.  fsspec's own ``FSSPEC_<PROTOCOL>_<OPTION>`` variables (and AWS's ``AWS_*``) configure backends
and are read by those libraries, not here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .errors import InvalidInputError
from .sizes import parse_size


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, its default (as a user would write it) and what it means."""

    name: str
    default: str
    meaning: str

    def raw(self) -> str | None:
        """The value as set, None when unset or blank."""
        value = os.environ.get(self.name)
        return value if value is not None and value.strip() else None


URL = Variable(
    "SCOUT_PERSIST_URL", "~/.scout", "store root: a local folder or any fsspec URL (s3://bucket/prefix, memory://x)"
)
COMPRESSION = Variable(
    "SCOUT_PERSIST_COMPRESSION",
    "auto",
    "codec of Python values: auto (Blosc2 for arrays with the arrays extra, zstd:3 for the rest), zstd:<1-22>, none",
)
HMAC_KEY = Variable(
    "SCOUT_PERSIST_HMAC_KEY", "", "the key pickles are signed with and must verify under; share it to share pickles"
)
HMAC_KEY_FILE = Variable(
    "SCOUT_PERSIST_HMAC_KEY_FILE",
    "~/.config/scout-persist/pickle.key",
    "the file of this account's own pickle key (made on first use) when SCOUT_PERSIST_HMAC_KEY is unset",
)
ALLOW_PICKLE = Variable(
    "SCOUT_PERSIST_ALLOW_PICKLE", "1", "0: never write nor read pickles (stores shared with untrusted writers)"
)
MAX_ENTRY_SIZE = Variable(
    "SCOUT_PERSIST_MAX_ENTRY_SIZE", "", "save()/persist() outputs larger than this (500M, 2G) are not cached"
)
DURABILITY = Variable(
    "SCOUT_PERSIST_DURABILITY",
    "safe",
    "safe: each write synced as its kind needs (docs/reliability.md, Durability); fast: no fsync, left to the OS",
)
RUN_LEASE = Variable(
    "SCOUT_PERSIST_RUN_LEASE", "60", "seconds a run may go without renewing its record before it counts as crashed"
)
RUN_FLUSH = Variable(
    "SCOUT_PERSIST_RUN_FLUSH", "1", "least seconds between two writes of a run record for finished jobs (0: each)"
)
SCAN_FORK = Variable(
    "SCOUT_PERSIST_SCAN_FORK", "", "1: ls/clean split big local scans over two processes always; 0: never"
)
AUDIT = Variable(
    "SCOUT_PERSIST_AUDIT",
    "0",
    "fraction of cache hits (0 to 1) computed again and compared with the stored value; a mismatch is warned about "
    "and recorded",
)
AUDIT_REPLACE = Variable(
    "SCOUT_PERSIST_AUDIT_REPLACE", "0", "1: an audit mismatch also replaces the stored job with the fresh value"
)
NO_COLOR = Variable("NO_COLOR", "", "set (to anything): the CLI never colours its output (no-color.org)")
HOME = Variable("HOME", "", "where Ruby's '~' points in paths recorded in .info files")
HOSTNAME = Variable("HOSTNAME", "", "the host name Ruby records in .info (pid_hostname); else the socket's")

VARIABLES = (
    URL,
    COMPRESSION,
    HMAC_KEY,
    HMAC_KEY_FILE,
    ALLOW_PICKLE,
    MAX_ENTRY_SIZE,
    DURABILITY,
    RUN_LEASE,
    RUN_FLUSH,
    SCAN_FORK,
    AUDIT,
    AUDIT_REPLACE,
    NO_COLOR,
    HOME,
    HOSTNAME,
)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _switch(variable: Variable, default: bool, fix: str) -> bool:
    raw = variable.raw()
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidInputError(
        f"{variable.name}={raw!r} is neither on nor off; it takes 1/true/yes/on or 0/false/no/off; {fix}"
    )


def _seconds(variable: Variable, allow_zero: bool) -> float:
    default = float(variable.default)
    raw = variable.raw()
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        least = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(
            f"{variable.name}={raw!r} is not a number of seconds {least}; "
            f"e.g. {variable.name}={default:g} (the default), or unset it"
        )
    return value


# -- the store -----------------------------------------------------------------------------------------------------
def store_url() -> str | None:
    """``$SCOUT_PERSIST_URL`` exactly as set, blanks included (None: unset or empty); checked, with the variable
    named, by :func:`scout_persist.store.store_url` (which refuses a blank value or one with spaces around it)."""
    return os.environ.get(URL.name) or None


def durability() -> str:
    """``safe`` (default): commits are flushed to the disk before they count; ``fast``: left to the OS."""
    raw = DURABILITY.raw()
    value = (raw or DURABILITY.default).strip().lower()
    if value not in ("safe", "fast"):
        raise InvalidInputError(
            f"{DURABILITY.name}={raw!r} is not a durability; use 'safe' (each write synced as its kind needs, the "
            "default) or "
            "'fast' (no fsync: a power cut may lose recent jobs, which are then recomputed)"
        )
    return value


# -- stored values ---------------------------------------------------------------------------------------------------
def compression() -> str | None:
    """``$SCOUT_PERSIST_COMPRESSION`` as set (None: the default); checked by
    :func:`scout_persist.codec_spec.parse_spec`."""
    return COMPRESSION.raw()


def hmac_key() -> str | None:
    """``$SCOUT_PERSIST_HMAC_KEY`` as set (None: unset or empty: the account's own key is used)."""
    value = os.environ.get(HMAC_KEY.name)
    return value or None


def hmac_key_file() -> str | None:
    """``$SCOUT_PERSIST_HMAC_KEY_FILE``, absolute with ``~`` expanded (None: the default file)."""
    raw = HMAC_KEY_FILE.raw()
    return os.path.abspath(os.path.expanduser(raw)) if raw else None


def allow_pickle() -> bool:
    """Whether pickles may be written and read here: ``$SCOUT_PERSIST_ALLOW_PICKLE`` (default on)."""
    return _switch(
        ALLOW_PICKLE,
        True,
        f"set {ALLOW_PICKLE.name}=0 to forbid pickles on a store shared with untrusted writers, or unset it",
    )


def max_entry_size() -> int | None:
    """``$SCOUT_PERSIST_MAX_ENTRY_SIZE`` in bytes (None: no limit)."""
    raw = MAX_ENTRY_SIZE.raw()
    if raw is None:
        return None
    try:
        return parse_size(raw)
    except InvalidInputError as exc:
        raise InvalidInputError(f"${MAX_ENTRY_SIZE.name}: {exc}, or unset it for no limit") from None


# -- runs ------------------------------------------------------------------------------------------------------------
def run_lease() -> float:
    """``$SCOUT_PERSIST_RUN_LEASE``: seconds a run may go without renewing its record (default 60)."""
    return _seconds(RUN_LEASE, allow_zero=False)


def run_flush() -> float:
    """``$SCOUT_PERSIST_RUN_FLUSH``: least seconds between two record writes for finished jobs (default 1)."""
    return _seconds(RUN_FLUSH, allow_zero=True)


# -- the command line and the machine --------------------------------------------------------------------------------
def scan_fork() -> bool | None:
    """``$SCOUT_PERSIST_SCAN_FORK``: True (always split a big local scan), False (never), None (decide by load)."""
    raw = SCAN_FORK.raw()
    if raw is None:
        return None
    return _switch(SCAN_FORK, True, f"or unset {SCAN_FORK.name} to let ls decide by the machine's load")


def no_color() -> bool:
    """``$NO_COLOR`` is set to anything but the empty string (https://no-color.org)."""
    return bool(os.environ.get(NO_COLOR.name))


def home() -> str:
    """``$HOME`` as set ('' when unset): Ruby's ``~`` in recorded paths."""
    return os.environ.get(HOME.name, "")


def hostname() -> str | None:
    """``$HOSTNAME`` when set (Ruby's ``pid_hostname``), else None."""
    return HOSTNAME.raw()


def audit_fraction() -> float:
    """``$SCOUT_PERSIST_AUDIT``: the fraction of cache hits to audit (0: none, the default; 1: every hit)."""
    raw = AUDIT.raw()
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:  # (NaN fails too)
        raise InvalidInputError(
            f"{AUDIT.name}={raw!r} is not a fraction of cache hits; it takes a number from 0 (no audit) to 1 (every "
            "hit), e.g. 0.05 to compute one hit in twenty again"
        )
    return value


def audit_replace() -> bool:
    """``$SCOUT_PERSIST_AUDIT_REPLACE``: whether an audit mismatch replaces the stored job."""
    return _switch(AUDIT_REPLACE, False, "unset it to only warn and record mismatches")


__all__ = [
    "AUDIT",
    "AUDIT_REPLACE",
    "audit_fraction",
    "audit_replace",
    "ALLOW_PICKLE",
    "COMPRESSION",
    "DURABILITY",
    "HMAC_KEY",
    "HMAC_KEY_FILE",
    "HOME",
    "HOSTNAME",
    "MAX_ENTRY_SIZE",
    "NO_COLOR",
    "RUN_FLUSH",
    "RUN_LEASE",
    "SCAN_FORK",
    "URL",
    "VARIABLES",
    "Variable",
    "allow_pickle",
    "compression",
    "durability",
    "hmac_key",
    "hmac_key_file",
    "home",
    "hostname",
    "max_entry_size",
    "no_color",
    "run_flush",
    "run_lease",
    "scan_fork",
    "store_url",
]
