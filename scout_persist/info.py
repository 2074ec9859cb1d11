"""The ``.info`` sidecar of a job: reading (JSON, Ruby Marshal, rbbt legacy) and writing with Ruby's key order.

Reading follows Ruby (SCOUT_FORMAT.md §6.1): JSON first, then Marshal; a file neither can read gives
``{"status": "noinfo"}`` unless ``strict=True`` (then :class:`InfoFormatError` naming the file).  Writing goes through
:class:`InfoFile`, which follows the status lifecycle of §6.4 and replaces the whole file atomically on each update.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import CorruptPayloadError, InfoFormatError, KeyNotFound
from .process import hostname as machine_name
from .ruby_marshal import dump_exception, is_marshal, loads as marshal_loads
from .rubyjson import dumps as json_dumps, parse_ruby_time, ruby_float, ruby_time  # noqa: F401  (public re-exports)
from .rubyvalues import RubyException, Symbol

if TYPE_CHECKING:
    from .store import Store

NOINFO = "noinfo"
SETUP_KEYS = (
    "status",
    "issued",
    "pid",
    "pid_hostname",
    "task_name",
    "workflow",
    "provided_inputs",
    "non_default_inputs",
    "inputs",
    "input_names",
    "type",
    "dependencies",
)
MAX_INFO_ARRAY = 100
_TRUNCATED = re.compile(r"TRUNCATED only 100 out of \d+ shown")
# rbbt-util (legacy) statuses and time keys, mapped onto Scout's
_LEGACY_STATUS = {"started": "start"}


def dumps_info(info: Mapping[str, Any]) -> bytes:
    """The bytes of a ``.info`` as Ruby writes them: one compact JSON line, no trailing newline."""
    return json_dumps(dict(info)).encode("utf-8")


def loads_info(data: bytes, where: str = "", strict: bool = False) -> dict[str, Any]:
    """Parse ``.info`` bytes (JSON, else Marshal). Empty -> ``{}``; unreadable -> ``noinfo`` or InfoFormatError."""
    if not data.strip():
        return {}
    problem = ""
    if is_marshal(data):
        try:
            value = marshal_loads(data, where)
        except CorruptPayloadError as exc:
            problem = str(exc)
        else:
            if isinstance(value, dict):
                return normalize_legacy({str(k): _plain(v) for k, v in value.items()})
            problem = f"the Marshal dump holds a {type(value).__name__}, not a Hash"
    else:
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            problem = f"not JSON ({exc})"
        else:
            if isinstance(value, dict):
                return value
            problem = f"the JSON is a {type(value).__name__}, not an object"
    if strict:
        raise InfoFormatError(
            f"info file {where!r} is neither Scout JSON nor a Ruby Marshal Hash: {problem}; it is truncated or "
            "was not written by Scout (Ruby reports such a job as status 'noinfo'; remove or rewrite the file)"
        )
    return {"status": NOINFO}


def read_info(store: Store, key: str, strict: bool = False) -> dict[str, Any]:
    """The info of ``key`` (the ``.info`` key itself) in ``store``: missing -> ``{}``, as Ruby reads it."""
    data = info_bytes(store, key)
    return {} if data is None else loads_info(data, store.path(key), strict)


def info_bytes(store: Store, key: str) -> bytes | None:
    """The raw ``.info`` at ``key`` (the ``.info`` key itself); None when there is none."""
    try:
        return store.get(key)
    except KeyNotFound:
        return None
    except OSError as exc:
        cause: BaseException | None = exc
        while cause is not None:  # the store may wrap the OSError in a StorageError
            if getattr(cause, "errno", None) == errno.ENAMETOOLONG:
                return None  # no file system can hold such a name, so the file does not exist (as in Ruby)
            cause = cause.__cause__
        raise


def _plain(v: Any) -> Any:
    """Legacy Marshal values: Symbols become their names (Scout reads statuses as strings)."""
    if isinstance(v, Symbol):
        return str(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {(str(k) if isinstance(k, Symbol) else k): _plain(x) for k, x in v.items()}
    return v


def normalize_legacy(info: dict[str, Any]) -> dict[str, Any]:
    """rbbt-util Marshal infos (§12): ``started`` -> ``start``, String pids, inputs given as a name->value map."""
    status = info.get("status")
    if isinstance(status, str) and status in _LEGACY_STATUS:
        info["status"] = _LEGACY_STATUS[status]
    if isinstance(info.get("pid"), str) and info["pid"].isdigit():
        info["pid"] = int(info["pid"])
    inputs = info.get("inputs")
    if isinstance(inputs, dict):
        info.setdefault("input_names", [str(k) for k in inputs])
        info["inputs"] = list(inputs.values())
    if "type" not in info and "result_type" in info:
        info["type"] = info["result_type"]
    return info


def truncate_array(values: list[Any]) -> list[Any]:
    """Arrays of more than 100 items in ``inputs``/``provided_inputs``: first 70, "...", last 30, a note."""
    if not isinstance(values, list) or len(values) <= MAX_INFO_ARRAY:
        return values
    if len(values) == MAX_INFO_ARRAY + 2 and _TRUNCATED.fullmatch(str(values[-1])) and values[70] == "...":
        return values  # already truncated (an info value copied over): keep it as is
    return [*values[:70], "...", *values[-30:], f"TRUNCATED only {MAX_INFO_ARRAY} out of {len(values)} shown"]


def _truncated(value: Any) -> Any:
    if isinstance(value, list):
        return [truncate_array(v) if isinstance(v, list) else v for v in value]
    if isinstance(value, dict):
        return {k: truncate_array(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


def encode_exception(exc: RubyException) -> str:
    """MIME Base64 (a newline every 60 characters and at the end) of the Marshal dump, as Ruby's ``[x].pack('m')``."""
    text = base64.b64encode(dump_exception(exc)).decode("ascii")
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def decode_exception(blob: str, where: str = "") -> RubyException:
    """The exception stored in an info's ``exception`` key; CorruptPayloadError when it is not a Ruby exception."""
    try:
        raw = base64.b64decode(blob.encode("ascii"), validate=False)
    except (ValueError, UnicodeEncodeError) as exc:
        raise CorruptPayloadError(f"{where}: 'exception' is not Base64 ({exc})") from exc
    value = marshal_loads(raw, f"{where} (exception)")
    if not isinstance(value, RubyException):
        raise CorruptPayloadError(
            f"{where}: 'exception' decodes to a {type(value).__name__}, not a Ruby exception; "
            "it was not written by Scout"
        )
    return value


def hostname() -> str:
    """``pid_hostname`` as Ruby writes it: ``$HOSTNAME``, else the host name (see :func:`process.hostname`)."""
    return machine_name(env=True)


def merge_value(info: dict[str, Any], key: str, value: Any, move_to_end: bool) -> None:
    """§6.4 merge rule: append new keys, extend lists, merge maps, replace anything else."""
    if key not in info:
        info[key] = value
        return
    current = info[key]
    if isinstance(current, list):
        current.extend(value if isinstance(value, list) else [value])
        if move_to_end:
            info[key] = info.pop(key)
        return
    if isinstance(current, dict):
        if not isinstance(value, dict):
            raise InfoFormatError(
                f"info key {key!r} holds a map and cannot be merged with {value!r:.60} (Ruby fails here too); "
                "give a map, or set() the key to replace it"
            )
        current.update(value)
        if move_to_end:
            info[key] = info.pop(key)
        return
    set_value(info, key, value, move_to_end)


def set_value(info: dict[str, Any], key: str, value: Any, move_to_end: bool) -> None:
    """Replace ``key``: in place during a run, moved to the end on an info re-read from disk."""
    if move_to_end and key in info:
        del info[key]
    info[key] = value


class InfoFile:
    """A job's ``.info``, written with Ruby's key order through the lifecycle setup -> start -> done | error.

    An InfoFile that ran :meth:`setup` updates keys in place (as a running Ruby job does); one opened on an
    existing file moves a replaced key to the end (as the CLI and later processes do).  Every change is written
    at once, atomically (``store.put``).
    """

    def __init__(self, store: Store, key: str, put: Callable[[bytes, bool], None] | None = None) -> None:
        self.store = store
        self.key = key if key.endswith(".info") else key + ".info"
        self._put = put  # how a write reaches the store (a job lease's fenced write); default store.put
        self._data: dict[str, Any] | None = None
        self._in_run = False
        self._t_issued: float | None = None
        self._t_start: float | None = None

    def __repr__(self) -> str:
        return f"InfoFile({self.store.url!r}, {self.key!r})"

    # -- reading ----------------------------------------------------------------
    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = read_info(self.store, self.key, strict=True)
        return self._data

    def reload(self) -> dict[str, Any]:
        self._data = None
        self._in_run = False
        return self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def status(self) -> str | None:
        return self.data.get("status")

    # -- writing ----------------------------------------------------------------
    def save(self) -> None:
        data = dumps_info(self.data)
        # A run's own writes (setup, start, done, error) are not synced: a crash that loses or tears one leaves the
        # job unreadable or in a running status, i.e. recomputed (docs/reliability.md, "Durability").  An edit of an
        # existing .info (the CLI's write_info) is a user's and is.
        durable = not self._in_run
        if self._put is not None:
            self._put(data, durable)
        else:
            self.store.put(self.key, data, durable=durable)

    def set(self, key: str, value: Any) -> None:
        """Replace (or add) one key and write."""
        set_value(self.data, key, value, move_to_end=not self._in_run)
        self.save()

    def merge(self, key: str, value: Any) -> None:
        """Update one key by the §6.4 merge rule and write."""
        merge_value(self.data, key, value, move_to_end=not self._in_run)
        self.save()

    def update(self, values: Mapping[str, Any]) -> None:
        """Merge several keys in order, one write."""
        for k, v in values.items():
            merge_value(self.data, k, v, move_to_end=not self._in_run)
        self.save()

    def setup(
        self,
        *,
        task_name: str,
        workflow: str,
        type: str = "binary",
        inputs: Iterable[Any] = (),
        input_names: Iterable[str] = (),
        provided_inputs: Mapping[str, Any] | None = None,
        non_default_inputs: Iterable[str] = (),
        dependencies: Iterable[str] = (),
        pid: int | None = None,
        pid_hostname: str | None = None,
        issued: str | None = None,
        save: bool = True,
    ) -> None:
        """Reset the info to the §6.4 setup keys (status ``setup``); ``save=False`` leaves the write to the next
        lifecycle step (``start`` right after: one write of the same final content)."""
        self._t_issued = time.time()
        self._t_start = None
        self._in_run = True
        self._data = {
            "status": "setup",
            "issued": issued or ruby_time(),
            "pid": os.getpid() if pid is None else pid,
            "pid_hostname": hostname() if pid_hostname is None else pid_hostname,
            "task_name": task_name,
            "workflow": workflow,
            "provided_inputs": _truncated(dict(provided_inputs or {})),
            "non_default_inputs": [str(n) for n in non_default_inputs],
            "inputs": _truncated(list(inputs)),
            "input_names": [str(n) for n in input_names],
            "type": str(type),
            "dependencies": [str(d) for d in dependencies],
        }
        if save:
            self.save()

    def start(self, **extra: Any) -> None:
        """Dependencies are done: append ``start`` (then ``extra`` keys of ours) and set status ``start``."""
        self._t_start = time.time()
        self.data["start"] = ruby_time()
        for k, v in extra.items():
            set_value(self.data, k, v, move_to_end=not self._in_run)
        set_value(self.data, "status", "start", move_to_end=not self._in_run)
        self.save()

    def log(self, status: str, message: str | None = None) -> None:
        """Set a (custom) status and append ``message`` to ``messages``."""
        set_value(self.data, "status", str(status), move_to_end=not self._in_run)
        if message is not None:
            merge_value(self.data, "messages", [str(message)], move_to_end=not self._in_run)
        self.save()

    def message(self, message: str) -> None:
        """Append a message without changing the status."""
        merge_value(self.data, "messages", [str(message)], move_to_end=not self._in_run)
        self.save()

    def done(self, **extra: Any) -> None:
        """Success: extra keys merged, ``status=done`` in place, then time_elapsed, total_time_elapsed and end.

        Call this only once the result payload is complete: a ``done`` info is the commit point.
        """
        for k, v in extra.items():
            merge_value(self.data, k, v, move_to_end=not self._in_run)
        now = time.time()
        start = self._t_start if self._t_start is not None else _epoch(self.data.get("start"), now)
        issued = self._t_issued if self._t_issued is not None else _epoch(self.data.get("issued"), start)
        set_value(self.data, "status", "done", move_to_end=not self._in_run)
        self.data["time_elapsed"] = _elapsed(now - start)
        self.data["total_time_elapsed"] = _elapsed(now - issued)
        self.data["end"] = ruby_time()
        self.save()

    def error(
        self,
        exc: BaseException | RubyException,
        *,
        recoverable: bool = True,
        backtrace: list[str] | None = None,
    ) -> None:
        """Failure: ``status=error``, then exception (Base64 Marshal), end, backtrace, and ``Class: message``.

        Ruby reruns a *recoverable* error (exception class other than ScoutException); ``recoverable=False``
        stores a ``ScoutException`` so Ruby keeps the error.  The Python class name travels as the ivar
        ``@python_class`` and in ``messages``.
        """
        rexc = exception_record(exc, recoverable=recoverable, backtrace=backtrace)
        shown = rexc.python_class or rexc.ruby_class
        set_value(self.data, "status", "error", move_to_end=not self._in_run)
        set_value(self.data, "exception", encode_exception(rexc), move_to_end=not self._in_run)
        set_value(self.data, "end", ruby_time(), move_to_end=not self._in_run)
        set_value(self.data, "backtrace", rexc.backtrace, move_to_end=not self._in_run)
        merge_value(self.data, "messages", [f"{shown}: {rexc.message}"], move_to_end=not self._in_run)
        self.save()


def exception_record(
    exc: BaseException | RubyException, recoverable: bool = True, backtrace: list[str] | None = None
) -> RubyException:
    """The Ruby exception stored for ``exc``: RuntimeError (recoverable) or ScoutException, with a backtrace."""
    if isinstance(exc, RubyException):
        return exc
    if backtrace is None:
        backtrace = [f"{fs.filename}:{fs.lineno}:in `{fs.name}'" for fs in traceback.extract_tb(exc.__traceback__)][
            ::-1
        ]
    return RubyException(
        "RuntimeError" if recoverable else "ScoutException",
        str(exc),
        backtrace,
        {"@python_class": type(exc).__qualname__},
    )


def _epoch(value: Any, fallback: float) -> float:
    try:
        return parse_ruby_time(value).timestamp()
    except (TypeError, ValueError):
        return fallback


def _elapsed(seconds: float) -> float:
    return round(max(seconds, 0.0), 9)
