"""The key that signs the pickles this user stores, so a pickle nobody with the key wrote is never unpickled.

``$SCOUT_PERSIST_HMAC_KEY`` when set: share it with everyone who shares pickled results on a store.  Otherwise a key
of this user's own, made on first use in ``~/.config/scout-persist/pickle.key`` (mode 0600; the home of the account,
not ``$HOME``, so every process of the user finds the same key; ``$SCOUT_PERSIST_HMAC_KEY_FILE`` names another file,
e.g. one on a home shared by a cluster's nodes).  Someone who can write to a store but cannot read this key cannot
make a pickle that loads: unpickling runs code.  When no key can be read or made (no writable home), pickles load
unsigned, as a store trusted as a whole, and a warning says so once.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import threading
import uuid

from . import settings

HMAC_ENV = "SCOUT_PERSIST_HMAC_KEY"
KEY_FILE_ENV = "SCOUT_PERSIST_HMAC_KEY_FILE"
KEY_BYTES = 32

log = logging.getLogger(__name__)
_lock = threading.Lock()
_by_path: dict[str, bytes | None] = {}


def current() -> bytes | None:
    """The HMAC key for pickles here and now; None when no key can be read or made."""
    env = settings.hmac_key()
    if env:
        return env.encode("utf-8")
    path = key_file()
    with _lock:
        if path not in _by_path:
            _by_path[path] = _read_or_make(path)
        return _by_path[path]


def source() -> str:
    """Where :func:`current` takes the key from, for messages."""
    if settings.hmac_key():
        return f"${HMAC_ENV}"
    return f"the key file {key_file()}" + ("" if current() is not None else " (unavailable: pickles are unsigned)")


def key_file() -> str:
    named = settings.hmac_key_file()
    if named:
        return os.path.abspath(os.path.expanduser(named))
    return os.path.join(_account_home(), ".config", "scout-persist", "pickle.key")


@functools.lru_cache(maxsize=1)
def _account_home() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):  # no pwd module (Windows) or an uid without an account
        return os.path.expanduser("~")


def _read_or_make(path: str) -> bytes | None:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _unavailable(path, exc)
        return None
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(KEY_BYTES).encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # publishes the whole key, or fails when another process published first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return _read(path)
    except OSError as exc:
        _unavailable(path, exc)
        return None


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        key = fh.read().strip()
    if len(key) < 2 * KEY_BYTES:
        raise OSError(f"{path} holds {len(key)} characters, fewer than a key of {KEY_BYTES} bytes; delete it")
    return key


def _unavailable(path: str, exc: OSError) -> None:
    """Say once per key file that pickles go unsigned here, and why."""
    log.warning(
        "scout-persist: no pickle key (%s: %s); pickles are stored and loaded unsigned, as from a store trusted "
        "as a whole. Set $%s, or $%s to a writable file",
        path,
        exc,
        HMAC_ENV,
        KEY_FILE_ENV,
    )
