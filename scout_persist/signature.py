"""The strong signature of a job: what must match for a stored result to count as this computation's result.

One algorithm, used by the Prefect plug-in (cache hits), ``persist()`` and ``scout-persist info --why`` alike.  A
signature is a small JSON map kept in the job's ``.info`` under ``signature``::

    {"signature_version": 4, "inputs": {"n": "<hex>", ...}, "dependencies": "<hex>", "code": "<hex>",
     "version": "", "code_parts": {"pipeline.scale": "<hex16>", ...}, "dependency_tokens": ["var/jobs/...=<hex>"]}

* ``inputs``: one digest per argument, by value (:mod:`scout_persist.valuedigest`), never by a per-process pickle or
  ``repr``; an argument fed by an upstream job is digested by its value too (a value changed in place after it was
  handed on is another input);
* ``dependencies``: the direct dependencies by job key and by the *content* of their results (:func:`dependency_token`:
  the payload record — bytes checksum, format, dtype, shape, flags — and the ``.files/`` manifest), so a dependency
  recomputed to something else invalidates its dependents;
* ``code``: the task's code identity (:mod:`scout_persist.codeidentity`), equal in every runner and process;
  ``code_parts`` names its components, so a miss can say which function, class or constant changed;
* ``version``: the task's ``version=``; ``declared``: its declared result type, format and extension.

A change of hashing bumps :data:`SIGNATURE_VERSION`; a stored signature of another version is a miss.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .codeidentity import CodeIdentity, changed_components, code_identity, identify, warn_not_followed
from .payload import record_of
from .result_token import ruby_result_token
from .valuedigest import DIGESTIBLE, file_content_digest, hasher, value_digest

if TYPE_CHECKING:
    from .store import Store

# 4: values by everything a computation sees (order, masks, pandas labels by type, float bits, folders recursively,
# files whole), code identity by named components (library objects by version), dependencies by their whole record
SIGNATURE_VERSION = 4
PARTS = ("inputs", "dependencies", "code", "version", "declared")


# ----------------------------------------------------------------------------------------------- signatures
def dependency_token(key: str, info: Mapping[str, Any] | None, store: Store | None = None) -> str:
    """How a dependency enters its dependents' signature: its job key and what its loaded value is made of — the
    whole payload record (checksum of the bytes, format, dtype, shape, flags, codec) and the ``.files/`` manifest.

    Jobs without a record (Ruby's own) count by the digest of their result bytes in ``store``
    (:func:`scout_persist.result_token.ruby_result_token`), so a Ruby rerun that changes them is seen and a rewrite
    of their ``.info`` timing fields is not; without ``store``, by their ``end`` time (older callers).
    """
    record = record_of(info or {}) if info else None
    if record is not None:
        files = (info or {}).get("files")
        h = hasher()
        h.update(json.dumps(record, sort_keys=True, default=str).encode())
        h.update(b"\0files:" + json.dumps(files, sort_keys=True, default=str).encode())
        content = "r:" + h.hexdigest()
    elif store is not None:
        content = ruby_result_token(store, key, info)
    else:
        content = "legacy:" + str((info or {}).get("end") or "")
    return f"{key}={content}"


def compute(
    inputs: Mapping[str, Any],
    dependencies: Sequence[str],
    code: str | CodeIdentity,
    version: Any = None,
    where: str = "task",
    digests: Mapping[str, str] | None = None,
    declared: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The signature of one computation: ``inputs`` by value (name -> value; ``digests`` gives digests already
    made, name -> hex), ``dependencies`` as :func:`dependency_token` strings in order, the task's code identity
    (:func:`identify`, or its digest), its ``version``, and what it declares about its result (``declared``: type,
    format, extension — they decide the value handed on)."""
    made = dict(digests or {})
    identity = code if isinstance(code, CodeIdentity) else None
    signature: dict[str, Any] = {
        "signature_version": SIGNATURE_VERSION,
        "inputs": {
            name: made[name] if name in made else value_digest(value, f"input {name!r} of {where}")
            for name, value in inputs.items()
        },
        "dependencies": dependencies_digest(dependencies),
        "code": identity.digest if identity is not None else code,
        "version": "" if version is None else str(version),
        "declared": _declared_digest(declared or {}),
    }
    for name in made:
        signature["inputs"].setdefault(name, made[name])
    if identity is not None:
        signature["code_parts"] = dict(sorted(identity.parts.items()))
    if dependencies:
        signature["dependency_tokens"] = list(dependencies)
    return signature


def _declared_digest(declared: Mapping[str, Any]) -> str:
    items = tuple(sorted(declared.items()))
    if all(type(k) is str and (v is None or type(v) is str) for k, v in items):
        return _digest_of_items(items)  # the same few names for every call of a task: digested once per process
    return value_digest(dict(items))


@functools.lru_cache(maxsize=1024)
def _digest_of_items(items: tuple[tuple[str, Any], ...]) -> str:
    return value_digest(dict(items))


def dependencies_digest(tokens: Sequence[str]) -> str:
    """The ``dependencies`` part of a signature from the :func:`dependency_token` of each direct dependency."""
    h = hasher()
    for token in tokens:
        h.update(token.encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def changed_parts(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """The parts of ``current`` that ``stored`` differs in; ``["signature_version"]`` when it was computed by
    another algorithm (or is missing or malformed)."""
    if not isinstance(stored, Mapping) or stored.get("signature_version") != current.get("signature_version"):
        return ["signature_version"]
    return [part for part in PARTS if stored.get(part) != current.get(part)]


def changed_inputs(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Names of the inputs whose digests differ between two signatures of the same version."""
    a, b = stored.get("inputs") or {}, current.get("inputs") or {}
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def explain(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """What changed between a stored signature and the current one, named: ``input 'n'``, ``dependency
    var/jobs/W/t/x``, ``code: helpers.scale``, ``version``, ``signature_version`` (machine-readable, stable)."""
    parts = changed_parts(stored, current)
    if parts == ["signature_version"] or not isinstance(stored, Mapping):
        return parts
    named: list[str] = []
    for part in parts:
        if part == "inputs":
            named += [f"input {name!r}" for name in changed_inputs(stored, current)]
        elif part == "dependencies":
            before = {_token_key(t): t for t in stored.get("dependency_tokens") or []}
            after = {_token_key(t): t for t in current.get("dependency_tokens") or []}
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            named += [f"dependency {k}" for k in keys] or ["dependencies"]
        elif part == "code":
            names = changed_components(stored.get("code_parts"), current.get("code_parts") or {})
            named += [f"code: {n.lstrip('.')}" for n in names] or ["code"]  # (".f": a function of the task's module)
        else:
            named.append(part)
    return named


def _token_key(token: Any) -> str:
    return str(token).rpartition("=")[0] or str(token)


def stored_signature(info: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The signature recorded in a job's ``.info`` (None for jobs that carry none, e.g. Ruby's)."""
    sig = info.get("signature")
    if isinstance(sig, Mapping):
        return sig
    legacy = (info.get("prefect") or {}).get("signature") if isinstance(info.get("prefect"), Mapping) else None
    return legacy if isinstance(legacy, Mapping) else None


__all__ = [
    "DIGESTIBLE",
    "SIGNATURE_VERSION",
    "changed_inputs",
    "changed_parts",
    "code_identity",
    "compute",
    "dependencies_digest",
    "dependency_token",
    "explain",
    "file_content_digest",
    "identify",
    "stored_signature",
    "value_digest",
    "warn_not_followed",
]
