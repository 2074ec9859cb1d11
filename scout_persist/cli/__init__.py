"""The ``scout-persist`` command line: info, prov, write_info, ls, clean, gc, verify, artifacts, path, runs, resume.

Every command takes a local path or an fsspec URL and honours ``SCOUT_PERSIST_URL``. Nothing heavy is imported at
start (no prefect; matplotlib and s3fs only when a command needs them) so ``scout-persist info`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from .. import __version__
from ..errors import ScoutPersistError

COMMANDS = ("info", "prov", "write_info", "ls", "clean", "budget", "verify", "artifacts", "path", "runs", "resume")
# command -> its line in `scout-persist --help` (each command's module uses it too), so the list needs no import
SUMMARIES = {
    "info": "show the .info of a job as Ruby's `scout workflow info` does",
    "prov": "show the provenance (dependency tree) of a job",
    "write_info": "add, update or remove a key of a job's .info",
    "ls": "list the jobs of a store (reads .info only when a status is asked for)",
    "clean": "remove error/aborted jobs, jobs older than N days, or one JOB (try --dry-run first)",
    "gc": "remove aborted jobs (their writer is gone), then the least recently used jobs and cache entries until the "
    "store fits a size limit",
    "verify": "recompute the checksums recorded in .info files and report mismatches",
    "artifacts": "list, show, download, alias, remove and verify registry artifacts",
    "path": "the job path Ruby Scout's 'scout workflow task' gives these arguments",
    "runs": "list the flow runs recorded in a store, newest first; runs show RUN; runs prune",
    "resume": "run a recorded flow run again (done jobs reused), or every crashed run with --incomplete",
}
ALIASES = {"write_info": ["write-info"]}
# command word -> the module that defines it (only that module is imported for a normal run)
MODULE_OF = {
    "info": "info",
    "prov": "prov",
    "write_info": "write_info",
    "write-info": "write_info",
    "ls": "ls",
    "clean": "clean",
    "gc": "budget",
    "verify": "verify",
    "artifacts": "artifacts",
    "path": "path",
    "runs": "runs",
    "resume": "resume",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``command``'s module; without a known command, the list of commands (no module imported)."""

    parser = argparse.ArgumentParser(
        prog="scout-persist",
        description="Inspect and maintain Scout job stores (local paths or fsspec URLs; root from $SCOUT_PERSIST_URL).",
        epilog="`scout-persist COMMAND --help` describes a command. Getting started: docs/getting-started.md",
    )
    parser.add_argument("--version", action="version", version=f"scout-persist {__version__}")
    parser.add_argument("--nocolor", "--no-color", action="store_true", help="never colour the output")
    parser.add_argument("--color", action="store_true", help="colour the output even when not writing to a terminal")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    if command in MODULE_OF:
        import_module(f".{MODULE_OF[command]}", __name__).add_parser(sub)
    else:
        for name, summary in SUMMARIES.items():
            sub.add_parser(name, aliases=ALIASES.get(name, []), help=summary)
    return parser


def _hoist_global_flags(argv: list[str]) -> list[str]:
    """Accept ``--nocolor``/``--color`` anywhere on the line, as Ruby's ``scout`` does."""
    flags = [a for a in argv if a in ("--nocolor", "--no-color", "--color")]
    rest = [a for a in argv if a not in ("--nocolor", "--no-color", "--color")]
    return flags + rest


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 a check failed, 2 usage or data error)."""
    argv = _hoist_global_flags(list(sys.argv[1:] if argv is None else argv))
    command = next((a for a in argv if not a.startswith("-")), None)  # (its module alone is imported)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ScoutPersistError as exc:
        sys.stderr.write(f"scout-persist {args.command}: {exc}\n")
        return 2
    except BrokenPipeError:  # `scout-persist ls | head`
        return 0
