"""The hit rule: can a stored job serve as the value of a computation?  Written once, asked by the Prefect plug-in
(through :class:`scout_persist.attempt.Attempt`), ``Job.load`` and ``scout-persist info --why``.

A job serves when its ``.info`` says ``done``; its signature, for jobs written with one, equals the expected one; it
has not expired; and its result bytes match the size and checksum its ``.info`` records and decode as that record
says (a pickle only with its HMAC verified).  Ruby's own jobs carry no signature and no checksum: they serve when
their result loads by Ruby's rules for their type.  Anything else is a :class:`Miss` with machine-readable reasons
and a sentence -- never a wrong value.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import payload, pickle_envelope, pickle_key
from .errors import CorruptPayloadError, KeyNotFound, UntrustedPayloadError
from .handover import marked_done_by_another
from .job_status import status_and_reason
from .rubyjson import parse_ruby_time
from .signature import changed_parts, dependency_token, explain, stored_signature
from .store import Store

PREFECT_KEY = "prefect"  # the .info key of the plug-in's own record (expiry, why it was recomputed, run ids)

# Reason codes of a Miss
ABSENT = "absent"  # no .info: no job
STATUS = "status"  # not done (running, failed, aborted, unreadable .info, ...)
SIGNATURE = "signature"  # "signature:<part>": computed with another value of that part (inputs, code, ...)
EXPIRED = "expired"
MISSING_RESULT = "missing_result"  # done, but its result file is gone
CORRUPT = "corrupt"  # the bytes fail their size, checksum, codec or type
UNTRUSTED = "untrusted"  # a pickle whose HMAC does not verify under the pickle key (or pickles are forbidden)
CLAIMED = "claimed"  # this attempt computes the job itself: nothing stored can serve it


class Expiry(enum.Enum):
    """Which expiry a verdict honours besides a task's ``cache_expiration`` (see :func:`judge`)."""

    RECORDED = "recorded"  # the expiry recorded with the job when it was written (the plug-in, ``--why``)
    IGNORED = "ignored"  # none: a reader of the value (``Job.load``, a flow collecting a worker's result)


NOT_LOADED = object()  # Served.value of a verdict asked with decode=False


@dataclass(frozen=True)
class Served:
    """The stored job serves: its ``value`` (:data:`NOT_LOADED` when only checked), the ``.info`` it was judged
    on, the ``record`` of how its bytes were written (None for Ruby's jobs), and the ``token`` naming it in its
    dependents' signatures (``<job key>=<checksum>``)."""

    value: Any
    info: Mapping[str, Any]
    record: Mapping[str, Any] | None
    token: str

    @property
    def scout_type(self) -> str:
        """How the job was written: ``pickle`` when its ``.info`` records a pickle, else its Scout type."""
        record = payload.record_of(self.info)
        if record is not None and record.get("format") == payload.PICKLE:
            return payload.PICKLE
        return str(self.info.get("type") or "binary")


@dataclass(frozen=True)
class Miss:
    """The stored job cannot serve: ``reasons`` (codes above; ``signature:<part>`` per changed part), ``message``
    (a sentence), ``status`` (as Ruby's ``prov`` shows it, for status misses), ``error`` (what the bytes raised),
    ``named``: what changed, named (``input 'n'``, ``code: helpers.scale``; :func:`scout_persist.signature.explain`)."""

    reasons: tuple[str, ...]
    message: str
    status: str = ""
    error: BaseException | None = None
    named: tuple[str, ...] = ()

    def has(self, code: str) -> bool:
        """Whether ``code`` is among the reasons (``signature`` matches every ``signature:<part>``)."""
        return any(r == code or r.startswith(code + ":") for r in self.reasons)

    @property
    def changed(self) -> list[str]:
        """What changed since the job was computed, named (else by signature part), and ``expired``."""
        out = list(self.named) or [r.split(":", 1)[1] for r in self.reasons if r.startswith(SIGNATURE + ":")]
        return out + [r for r in self.reasons if r == EXPIRED]


Verdict = Served | Miss


def quick_miss(
    store: Store,
    key: str,
    info: Mapping[str, Any] | None,
    signature: Mapping[str, Any] | None = None,
    expiration: _dt.timedelta | Expiry = Expiry.RECORDED,
    *,
    holding_lock: bool = False,
    describe: bool = True,
) -> Miss | None:
    """The part of the rule that needs no result bytes: ``.info`` present and ``done``, the signature (when one is
    expected and the job carries one), the expiry.  None: the job may serve (its bytes still decide).

    ``describe=False``: a status miss says the recorded status only (no look at the result or the writer)."""
    if info is None:
        return Miss((ABSENT,), "there is no job (no .info)", status="missing")
    status = info.get("status")
    if status != "done":
        if not describe:
            return Miss((STATUS,), f"status is {status!r}, not 'done'", status=str(status or ""))
        return _status_miss(store, key, info, holding_lock)
    marked = marked_done_by_another(dict(info))
    if marked:  # a late Ruby 'done' landed on a Python run's 'start' (docs/reliability.md, Ruby and Python)
        return Miss((STATUS,), marked, status="start")
    stored = stored_signature(info)
    if signature is not None and stored is not None:
        changed = changed_parts(stored, signature)
        if changed:
            named = tuple(explain(stored, signature))
            return Miss(
                tuple(f"{SIGNATURE}:{part}" for part in changed),
                f"it was computed with another {', '.join(named or changed)}",
                named=named,
            )
    if expired(info, expiration):
        return Miss((EXPIRED,), "it expired (cache_expiration)")
    return None


def judge(
    store: Store,
    key: str,
    info: Mapping[str, Any] | None,
    *,
    signature: Mapping[str, Any] | None = None,
    expiration: _dt.timedelta | Expiry = Expiry.RECORDED,
    decode: bool = True,
    scout_type: str | None = None,
    result_key: str | None = None,
    relocate: Callable[[str], str] | None = None,
    holding_lock: bool = False,
) -> Verdict:
    """THE hit rule for job ``key`` of ``store`` whose ``.info`` is ``info`` (None: absent): one read of its result.

    ``signature``: the expected one (None: Ruby's rules, no signature compared); ``expiration``: a task's
    ``cache_expiration`` (counted from the job's end; the recorded expiry holds too) or an :class:`Expiry`;
    ``decode=False`` checks the bytes without building the value (a pickle's HMAC is checked, nothing unpickled);
    ``scout_type`` decodes by that type once the bytes are verified; ``result_key`` reads the result from another key
    (Ruby's compressed ``.gz`` results); ``relocate`` maps absolute paths inside Ruby results onto this root.
    """
    miss = quick_miss(store, key, info, signature, expiration, holding_lock=holding_lock)
    if miss is not None:
        return miss
    assert info is not None  # quick_miss said absent otherwise
    return judge_bytes(store, key, info, decode=decode, scout_type=scout_type, result_key=result_key, relocate=relocate)


def judge_bytes(
    store: Store,
    key: str,
    info: Mapping[str, Any],
    *,
    decode: bool = True,
    scout_type: str | None = None,
    result_key: str | None = None,
    relocate: Callable[[str], str] | None = None,
) -> Verdict:
    """The half of :func:`judge` that reads the result: present, its bytes as its record says (size, checksum,
    codec, a pickle's HMAC), decoded (``Job.load`` asks it alone for a result without a readable ``.info``, by the
    type its caller gives)."""
    record = payload.record_of(info)
    token = dependency_token(key, info, store)
    if record is not None and record.get("format") == "none":
        return Served(None, info, record, token)  # the task returned None: there is no result file
    result = result_key or key
    where = f"{store.url.rstrip('/')}/{result}"
    try:
        data = payload.read(store, result, record if result == key else None, use=decode)  # a use: gc's LRU order
    except KeyNotFound:
        return Miss((MISSING_RESULT,), "status is 'done' but its result file is missing", status="unsync")
    try:
        value = _value(data, record, info, key, where, decode, scout_type, relocate)
    except UntrustedPayloadError as exc:
        return Miss((UNTRUSTED,), f"its result cannot be used ({exc})", error=exc)
    except (CorruptPayloadError, ValueError, TypeError, ImportError) as exc:  # ImportError: a codec missing here
        return Miss((CORRUPT,), f"its result cannot be used ({exc})", error=exc)
    return Served(value, info, record, token)


def _value(
    data: Any,
    record: Mapping[str, Any] | None,
    info: Mapping[str, Any],
    key: str,
    where: str,
    decode: bool,
    scout_type: str | None,
    relocate: Callable[[str], str] | None,
) -> Any:
    if record is not None and scout_type is not None:
        payload.verify(data, record, where)
        record = None  # verified: decoded by the type asked for
    if record is None:  # a job Ruby wrote (or a type asked for): Ruby's rules for its type, never unpickled
        return payload.decode(
            data,
            None,
            key=key,
            scout_type=scout_type or info.get("type") or "binary",
            location=where,
            relocate=relocate,
        )
    if decode:
        return payload.decode(data, record, key=key, location=where, relocate=relocate)
    if record.get("format") == payload.PICKLE:  # checked without unpickling anything
        payload.verify(data, record, where)
        if pickle_key.current() is not None:
            pickle_envelope.check_pickle_hmac(data, where, bind=key)
        return NOT_LOADED
    payload.decode(data, record, key=key, location=where, relocate=relocate)
    return NOT_LOADED


def expired(info: Mapping[str, Any], expiration: _dt.timedelta | Expiry = Expiry.RECORDED) -> bool:
    """Expired by the expiry recorded when it was written, or by ``expiration`` counted from its end (an expiry or
    end that cannot be read is not trusted)."""
    if expiration is Expiry.IGNORED:
        return False
    now = _dt.datetime.now(_dt.timezone.utc)
    record = got if isinstance(got := info.get(PREFECT_KEY), Mapping) else {}
    recorded = record.get("expires")
    if isinstance(recorded, str):
        try:
            if _dt.datetime.fromisoformat(recorded) <= now:
                return True
        except ValueError:
            return True
    if isinstance(expiration, _dt.timedelta):
        try:
            end = parse_ruby_time(str(info.get("end")))
        except (TypeError, ValueError):
            return True
        return end + expiration <= now
    return False


def _status_miss(store: Store, key: str, info: Mapping[str, Any], holding_lock: bool) -> Miss:
    shown, gone = status_and_reason(store, key, info, store.exists(key), holding_lock=holding_lock)
    if gone is not None:
        return Miss((STATUS,), f"status is {info.get('status')!r} but {gone}: {shown}", status=shown)
    return Miss((STATUS,), f"status is {shown!r}, not 'done'", status=shown)


__all__ = [
    "ABSENT",
    "CLAIMED",
    "CORRUPT",
    "EXPIRED",
    "MISSING_RESULT",
    "NOT_LOADED",
    "PREFECT_KEY",
    "SIGNATURE",
    "STATUS",
    "UNTRUSTED",
    "Expiry",
    "Miss",
    "Served",
    "Verdict",
    "expired",
    "judge",
    "judge_bytes",
    "quick_miss",
]
