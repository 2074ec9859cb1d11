"""What a run recorded of a job it computed or reused (its ``content``: the result checksum and a digest of each
signature part), and whether the job still holds it now -- what ``reuse(run=...)`` trusts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..signature import PARTS

if TYPE_CHECKING:
    from .listing import Run


CONTENT = "content"  # a job entry's record of what the job held when the run computed or reused it
SIGNATURE_PARTS = ("signature_version", *PARTS)


def job_content(token: str, key: str, signature: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a run records of a job it computed or reused: ``result``, the job's dependency token
    (:func:`scout_persist.signature.dependency_token`) without its key -- the checksum recorded for its payload, or
    ``legacy:<end>`` for a job Ruby wrote -- and, when the job has a signature, ``signature``: a short digest of each
    of its parts, enough to name the part that changed."""
    prefix = key + "="
    content: dict[str, Any] = {"result": token[len(prefix) :] if token.startswith(prefix) else token}
    if isinstance(signature, Mapping):
        content["signature"] = {part: _part_digest(signature.get(part)) for part in SIGNATURE_PARTS}
    return content


def _part_digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def content_changes(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between a job's content as a run recorded it and as it is now (both from :func:`job_content`):
    ``result`` and the signature parts (compared where both carry a signature).  Empty: the same job."""
    changes = []
    if recorded.get("result") != now.get("result"):
        changes.append(f"result (checksum {recorded.get('result')} then, {now.get('result')} now)")
    then, current = recorded.get("signature"), now.get("signature")
    if isinstance(then, Mapping) and isinstance(current, Mapping):
        changes += [f"signature {part}" for part in SIGNATURE_PARTS if then.get(part) != current.get(part)]
    return changes


def writer_run_of(info: Mapping[str, Any]) -> str | None:
    """The flow run that wrote a job, as its ``.info`` records it (None: no recorded run wrote it)."""
    record = got if isinstance(got := info.get("prefect"), Mapping) else {}
    run = record.get("flow_run_id")
    return str(run) if run else None


def still_holds(run: Run, entry: Mapping[str, Any], info: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """None when the job of ``entry`` (a job of ``run``) still holds the value the run recorded, judged by its
    ``info`` now and ``now`` (its :func:`job_content`); else why not, naming what changed.

    A record written before contents were recorded (no ``content``) proves nothing by itself: the job counts as
    the run's only when its ``.info`` names the run as its writer (a later run that rewrote it names itself)."""
    recorded = entry.get(CONTENT)
    key = str(entry.get("key"))
    how = "reused" if entry.get("reused") else "computed"
    if isinstance(recorded, Mapping):
        changes = content_changes(recorded, now)
        if not changes:
            return None
        return f"job {key!r} changed since run {run.run_id} {how} it: its {', '.join(changes)}"
    writer = writer_run_of(info)
    if writer == run.run_id:
        return None
    return (
        f"the record of run {run.run_id} predates job checksums (it was written by an older scout-persist), and job "
        f"{key!r} cannot be shown to still hold that run's value: its .info names "
        + (f"run {writer}" if writer else "no recorded run")
        + " as its writer"
    )
