"""The key that signs the pickles this user stores, so a pickle nobody with the key wrote is never unpickled.

``$SCOUT_PERSIST_HMAC_KEY`` when set: share it with everyone who shares pickled results on a store.  Otherwise a key
of this user's own, made on first use in ``~/.config/scout-persist/pickle.key`` (mode 0600; the home of the account,
not ``$HOME``, so every process of the user finds the same key; ``$SCOUT_PERSIST_HMAC_KEY_FILE`` names another file,
e.g. one on a home shared by a cluster's nodes).  Someone who can write to a store but cannot read this key cannot
make a pickle that loads: unpickling runs code.

Fail closed: a key that is there but cannot be used -- a variable too short, a key file that is a folder, empty, too
short, unreadable, readable or writable by others, owned by another account, or that cannot be made -- raises
:class:`PickleKeyError` (naming the file, the rule and the fix) whenever a pickle is written or read.  Pickles are
never written or loaded unsigned because of it.
"""

from __future__ import annotations

import functools
import os
import secrets
import stat
import threading
import uuid

from . import settings
from .errors import PickleKeyError

HMAC_ENV = "SCOUT_PERSIST_HMAC_KEY"
KEY_FILE_ENV = "SCOUT_PERSIST_HMAC_KEY_FILE"
KEY_BYTES = 32  # random bytes of a key this module makes (written as 64 hex digits)
# RFC 2104 §3: HMAC keys shorter than the hash's output (32 bytes for SHA-256) are "strongly discouraged, as they
# decrease the security strength of the function".  64 hex digits of a made key, or a passphrase, pass.
MIN_KEY_BYTES = 32
MAKE_KEY = "python -c 'import secrets; print(secrets.token_hex(32))'"

_lock = threading.Lock()
_by_file: dict[str, tuple[tuple[int, int, int, int], bytes]] = {}  # path -> ((device, inode, mtime, size), key)


def current() -> bytes:
    """The HMAC key for pickles here and now; :class:`PickleKeyError` when the key there is cannot be used."""
    env = env_key()
    if env is not None:
        return env
    return file_key(key_file())


def source() -> str:
    """Where :func:`current` takes the key from, for messages (never raises)."""
    if settings.hmac_key():
        return f"${HMAC_ENV}"
    return f"the key file {key_file()}"


def env_key() -> bytes | None:
    """``$SCOUT_PERSIST_HMAC_KEY`` as a checked key; None when unset or empty (then the key file is used)."""
    raw = settings.hmac_key()
    if not raw:
        return None
    key = raw.encode("utf-8", "surrogateescape")
    check_length(key, f"${HMAC_ENV}", f"set ${HMAC_ENV} to a longer secret, e.g. the output of: {MAKE_KEY}")
    return key


def check_length(key: bytes, where: str, fix: str) -> None:
    """PickleKeyError when ``key`` is shorter than :data:`MIN_KEY_BYTES`."""
    if len(key) < MIN_KEY_BYTES:
        raise PickleKeyError(
            f"{where} holds {len(key)} bytes; a pickle key holds at least {MIN_KEY_BYTES} (RFC 2104: an HMAC-SHA256 "
            f"key shorter than its 32-byte output weakens it), and pickles are not signed or loaded without a usable "
            f"key; {fix}"
        )


def key_file() -> str:
    """The key file: ``$SCOUT_PERSIST_HMAC_KEY_FILE``, else ``~/.config/scout-persist/pickle.key`` of the account."""
    named = settings.hmac_key_file()
    if named:
        return os.path.abspath(os.path.expanduser(named))
    return os.path.join(_account_home(), ".config", "scout-persist", "pickle.key")


@functools.lru_cache(maxsize=1)
def _account_home() -> str:
    try:
        import pwd  # POSIX only

        return pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):  # no pwd module (Windows) or an uid without an account
        return os.path.expanduser("~")


def file_key(path: str) -> bytes:
    """The key in ``path``, made (0600, in a 0700 folder) when there is no file; checked at every call, so a key file
    whose mode, owner or content changed is judged again."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # not there, or a file where its folder should be
        return _make(path)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    check_private(path, st)
    seen = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    with _lock:
        known = _by_file.get(path)
    if known is not None and known[0] == seen:
        return known[1]
    key = _read(path)
    with _lock:
        _by_file[path] = (seen, key)
    return key


def check_private(path: str, st: os.stat_result) -> None:
    """PickleKeyError unless ``path`` (as ``st`` describes it) is a regular file of this account that no one else
    can read or write: whoever can read the key can sign pickles this account unpickles, and whoever can write it
    can choose the key (the rule ssh applies to private keys)."""
    if stat.S_ISDIR(st.st_mode):
        raise PickleKeyError(
            f"the pickle key file {path} is a folder, not a file holding a key; remove it, or set ${KEY_FILE_ENV} to "
            f"a file (made on first use), or set ${HMAC_ENV}"
        )
    if not stat.S_ISREG(st.st_mode):
        raise PickleKeyError(
            f"the pickle key file {path} is not a regular file; remove it (a key is made on first use), or set "
            f"${KEY_FILE_ENV} to another file"
        )
    if os.name == "nt":  # no POSIX owner and mode bits to judge
        return
    me = os.geteuid()
    if st.st_uid != me:
        raise PickleKeyError(
            f"the pickle key file {path} is owned by uid {st.st_uid}, not by this account (uid {me}): its owner can "
            f"change the key and sign pickles this account unpickles; use a key file of your own (remove this one "
            f"and a new key is made on first use, or set ${KEY_FILE_ENV})"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise PickleKeyError(
            f"permissions {mode:04o} for the pickle key file {path} are too open: a key others can read lets them "
            f"sign pickles this account unpickles, one they can write lets them choose it; chmod 600 {path}"
        )


def _read(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    try:
        check_private(path, os.fstat(fd))  # what was opened, not what the name pointed to a moment before
        with os.fdopen(fd, "rb", closefd=False) as fh:
            key = fh.read().strip()
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    finally:
        os.close(fd)
    check_length(
        key,
        f"the pickle key file {path}",
        f"remove it (a new key is made on first use; pickles signed with the old one are recomputed) or write a key "
        f"of at least {MIN_KEY_BYTES} bytes into it, e.g. the output of: {MAKE_KEY}",
    )
    return key


def _make(path: str) -> bytes:
    """Make the key file: a complete temporary file hard-linked to its name, so racing processes all read the one
    key published first."""
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
    except OSError as exc:
        raise PickleKeyError(
            f"no pickle key: the key file {path} does not exist and cannot be made ({exc}), and pickles are not "
            f"signed or loaded without a key; set ${KEY_FILE_ENV} to a file in a folder this account can write, or "
            f"set ${HMAC_ENV} (at least {MIN_KEY_BYTES} bytes, e.g. the output of: {MAKE_KEY})"
        ) from exc
    return file_key(path)


def _unreadable(path: str, exc: OSError) -> PickleKeyError:
    return PickleKeyError(
        f"the pickle key file {path} cannot be read ({exc}), and pickles are not signed or loaded without a key; "
        f"make it readable by this account (chmod 600 {path}), remove it (a new key is made on first use), or set "
        f"${KEY_FILE_ENV} to another file"
    )
