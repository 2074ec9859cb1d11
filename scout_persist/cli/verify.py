"""``scout-persist verify [JOB_OR_ROOT]``: recompute the checksums recorded in ``.info`` and report mismatches.

A record is any map in the ``.info`` (top level or nested, e.g. ``payload``) holding ``checksum`` =
``"<algorithm>:<hex>"``. It describes the job's result, or the file named by its ``file`` entry under the job's
``.files/``. The checksum covers the bytes as stored. Jobs without a record (every job Ruby wrote) are counted as
unverified, not as failures.

``--unsigned`` lists the pickled results that would not load under the pickle key (unsigned, or signed
with another key or for another job): a cache recomputes them; nothing is unpickled to tell.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from .. import formats, payload, pickle_envelope, pickle_key
from ..checksums import THREADED_HASH_MIN, new_checksum
from ..errors import CorruptPayloadError, InvalidInputError, KeyNotFound, UntrustedPayloadError
from . import SUMMARIES
from .jobs import load_info
from .output import emit, emit_json, warn
from .selection import add_selection_options, select
from .target import JobRef, resolve_job

CHUNK = 1 << 20


def records(info: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(where in the info, record) for every checksum record in ``info``."""
    if isinstance(info, dict):
        if isinstance(info.get("checksum"), str) and ":" in info["checksum"]:
            yield path, info
        for k, v in info.items():
            if isinstance(v, (dict, list)) and len(path) < 4:
                yield from records(v, path + (k,))
    elif isinstance(info, list):
        for i, v in enumerate(info):
            if isinstance(v, (dict, list)) and len(path) < 4:
                yield from records(v, path + (i,))


def _hash(ref: JobRef, key: str, algorithm: str) -> tuple[str, int]:
    """Stream ``key`` through the recorded algorithm: (hex digest, size); no whole payload in memory."""
    try:
        h = new_checksum(algorithm, THREADED_HASH_MIN)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"checksum algorithm {algorithm!r} recorded in {ref.info_key!r} is unknown; expected blake3 or sha256"
        ) from exc
    size = 0
    with ref.store.open(key, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def verify_job(ref: JobRef) -> list[dict[str, Any]]:
    """One result per checksum record of ``ref``: status ``ok``, ``mismatch``, ``size`` or ``missing``."""
    info = load_info(ref) or {}
    out = []
    for where, rec in records(info):
        name = rec.get("file")
        key = f"{ref.files_key}/{name}" if isinstance(name, str) and name else ref.key
        row = {
            "job": ref.display,
            "record": ".".join(map(str, where)) or "(top)",
            "file": key.rsplit("/", 1)[-1],
            "expected": rec["checksum"],
        }
        try:
            if where == (payload.RECORD_KEY,) and formats.for_record(rec, key) is not None:
                ok = _format_matches(ref, rec, key)  # a typed format's checksum covers what its format says
                size = rec.get("stored_size")
            else:
                algorithm, _, expected = rec["checksum"].partition(":")
                actual, size = _hash(ref, key, algorithm)
                row["actual"] = f"{algorithm}:{actual}"
                ok = actual == expected
        except KeyNotFound:
            out.append({**row, "status": "missing"})
            continue
        if not ok:
            row["status"] = "mismatch"
        elif rec.get("stored_size") not in (None, size):
            row["status"] = "size"
        else:
            row["status"] = "ok"
        out.append(row)
    return out


def _format_matches(ref: JobRef, rec: dict[str, Any], key: str) -> bool:
    """A typed format's result (e.g. an uncompressed NPY, whose checksum covers the array bytes after its header) is
    verified by its format."""
    try:
        payload.verify(ref.store.get(key), rec, key)
    except CorruptPayloadError:
        return False
    return True


def unsigned_job(ref: JobRef) -> dict[str, Any] | None:
    """A row when ``ref``'s result is a pickle that does not verify under the current HMAC key, else None."""
    info = load_info(ref) or {}
    record = payload.record_of(info)
    if record is None or record.get("format") != payload.PICKLE:
        return None
    row = {"job": ref.display, "status": "unsigned"}
    if pickle_key.current() is None:
        return None if record.get("hmac") else row
    try:
        pickle_envelope.check_pickle_hmac(ref.store.get(ref.key), ref.display, bind=ref.key)
    except KeyNotFound:
        return None
    except (UntrustedPayloadError, CorruptPayloadError) as exc:
        return {**row, "reason": str(exc)}
    return None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help=SUMMARIES["verify"])
    add_selection_options(p)
    p.add_argument("--json", action="store_true", help="print every check as JSON")
    p.add_argument(
        "--unsigned",
        action="store_true",
        help="list pickled results that do not verify under the pickle key (recomputed by caches)",
    )
    p.set_defaults(run=run)


def _single_job(arg: str | None) -> JobRef | None:
    if not arg:
        return None
    ref = resolve_job(arg)
    return ref if ref.store.exists(ref.info_key) else None


def run(args: argparse.Namespace) -> int:
    job = _single_job(args.root)
    refs = [job] if job else [j.ref for j in select(args, "verify")[1]]
    if args.unsigned:
        return _run_unsigned(args, refs)
    results, unverified = [], 0
    for ref in refs:
        rows = verify_job(ref)
        unverified += not rows
        results.extend(rows)
    bad = [r for r in results if r["status"] != "ok"]
    if args.json:
        emit_json({"checked": len(results), "failed": len(bad), "unverified_jobs": unverified, "results": results})
    else:
        for r in bad:
            emit(
                f"{r['status'].upper():<8} {r['job']} [{r['file']}] expected {r['expected']}"
                + (f" got {r['actual']}" if "actual" in r else "")
            )
        warn(f"verify: {len(results)} checksums, {len(bad)} failed; {unverified} of {len(refs)} jobs carry no checksum")
    return 1 if bad else 0


def _run_unsigned(args: argparse.Namespace, refs: list[JobRef]) -> int:
    rows = [row for row in map(unsigned_job, refs) if row is not None]
    if args.json:
        emit_json({"checked": len(refs), "unsigned": len(rows), "results": rows})
    else:
        for row in rows:
            emit(f"UNSIGNED {row['job']}" + (f" ({row['reason']})" if "reason" in row else ""))
        warn(
            f"verify --unsigned: {len(rows)} of {len(refs)} jobs hold pickles that do not verify "
            f"(key: {pickle_key.source()}); caches recompute them"
        )
    return 1 if rows else 0
