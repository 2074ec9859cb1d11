"""``scout-persist gc --uploads [ROOT] [--older-than HOURS] [--dry-run]``: abort orphaned multipart uploads.

A writer killed with -9 in the middle of a large S3 write leaves a multipart upload that is never completed: no
object appears, but its parts stay stored (and billed) until the upload is aborted. This lists the incomplete
uploads under the store root idle (no new part, by the store's clock) for more than ``--older-than`` (default 24
hours, so writes still in flight are left alone) and aborts them; ``--dry-run`` lists only. Only s3:// stores have
them: other stores are a clear error.
"""

from __future__ import annotations

import argparse
import re
import time

from ..errors import InvalidInputError
from .output import emit, emit_json, warn
from .target import resolve_root

DEFAULT_HOURS = 24.0


def add_option(p: argparse.ArgumentParser) -> None:
    """The ``--uploads`` switch of ``gc`` (its ``--older-than`` then means hours)."""
    p.add_argument(
        "--uploads",
        action="store_true",
        help="abort incomplete multipart uploads (S3) idle for more than --older-than HOURS "
        f"(default {DEFAULT_HOURS:g}; also 30m, 2d); try --dry-run first",
    )
    p.add_argument("--json", action="store_true", help="with --uploads: print the uploads as JSON")


def parse_hours(text: str | None) -> float:
    """``--older-than`` for uploads, in seconds: a bare number is hours; ``s``/``m``/``h``/``d`` units are accepted."""
    if text is None:
        return DEFAULT_HOURS * 3600
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text).lower())
    if not m:
        raise InvalidInputError(
            f"--older-than {text!r} is not an age; with --uploads write hours (24, 0.5) or 30m, 2d, 45s"
        )
    return float(m.group(1)) * {"": 3600, "h": 3600, "s": 1, "m": 60, "d": 86400}[m.group(2)]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.1f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def run_gc_uploads(args: argparse.Namespace) -> int:

    if getattr(args, "max_size", None):
        raise InvalidInputError(
            "gc --uploads aborts multipart uploads; run it without --max-size (and gc --max-size separately for jobs)"
        )
    older = parse_hours(args.older_than)
    store = resolve_root(args.root)
    uploads = store.incomplete_uploads(older_than=older)
    now = time.time()
    aborted = []
    for u in uploads:
        done = False if args.dry_run else store.abort_upload(u)
        aborted.append(done)
        if not args.json:
            verb = "would abort" if args.dry_run else ("aborted" if done else "already gone")
            idle = None if u.last_active is None else now - u.last_active
            emit(f"{verb:<12} idle {_age(idle):>6}  {u.key}  upload {u.upload_id}")
    if args.json:
        emit_json(
            [
                {
                    "key": u.key,
                    "upload_id": u.upload_id,
                    "initiated": u.initiated,
                    "last_active": u.last_active,
                    "aborted": done,
                }
                for u, done in zip(uploads, aborted)
            ]
        )
    what = "would abort" if args.dry_run else "aborted"
    warn(
        f"gc --uploads: {what} {sum(aborted) if not args.dry_run else len(uploads)} incomplete uploads idle for "
        f"more than {_age(older)} under {store.url}{' (dry run: nothing aborted)' if args.dry_run else ''}"
    )
    return 0
