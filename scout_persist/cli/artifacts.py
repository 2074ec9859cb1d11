"""``scout-persist artifacts ls | show | get | alias | rm | verify``: the artifact registry from the shell.

Every subcommand works on the registry of one store (``--root``, default ``$SCOUT_PERSIST_URL`` or ``~/.scout``;
``--prefix``, default ``artifacts``) and prints JSON with ``--json``. References are ``NAME`` (the latest
version), ``NAME:vN`` or ``NAME:ALIAS``. Exit status: 0 ok, 1 a verification found problems, 2 bad input or a
missing artifact (the message says which and what exists).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from ..registry import Registry, parse_ref
from ..sizes import human_size
from . import SUMMARIES
from .output import emit, emit_json, warn
from .target import resolve_root

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..registry import ArtifactVersion, Registry


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("artifacts", help=SUMMARIES["artifacts"])
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def verb(name: str, help: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        v: argparse.ArgumentParser = verbs.add_parser(name, help=help)
        v.add_argument("--root", default=None, help="store root (path or fsspec URL); default $SCOUT_PERSIST_URL")
        v.add_argument("--prefix", default="artifacts", help="registry folder under the root (default: artifacts)")
        v.add_argument("--json", action="store_true", help="print JSON")
        v.set_defaults(run=run)
        return v

    v = verb("ls", "list artifacts, or the versions of one", run_ls)
    v.add_argument("name", nargs="?", help="an artifact name: list its versions")
    v = verb("show", "show one version: files, metadata, aliases", run_show)
    v.add_argument("ref", metavar="NAME[:vN|:ALIAS]")
    v = verb("get", "download one version into DEST, verifying every file", run_get)
    v.add_argument("ref", metavar="NAME[:vN|:ALIAS]")
    v.add_argument("dest", metavar="DEST", help="folder to write the files into (created if missing)")
    v = verb("alias", "point ALIAS at a version (moving it if it pointed elsewhere)", run_alias)
    v.add_argument("ref", metavar="NAME:vN")
    v.add_argument("alias", metavar="ALIAS")
    v = verb("rm", "remove one version (its number is never reused; content blobs stay)", run_rm)
    v.add_argument("ref", metavar="NAME:vN")
    v.add_argument(
        "--delete-aliases",
        dest="delete_aliases",
        action="store_true",
        help="also remove the aliases pointing at it (otherwise they make rm refuse)",
    )
    v.add_argument("-n", "--dry-run", dest="dry_run", action="store_true", help="say what would go, remove nothing")
    v = verb("verify", "check versions against their manifests (all, every version of NAME, or NAME:REF)", run_verify)
    v.add_argument("ref", nargs="?", metavar="NAME[:vN|:ALIAS]")


def _registry(args: argparse.Namespace) -> Registry:

    return Registry(resolve_root(args.root), prefix=args.prefix)


def _size(manifest: dict[str, Any]) -> int:
    return sum(int(f.get("size") or 0) for f in manifest.get("files") or [] if isinstance(f, dict))


def _aliases_of(aliases: dict[str, str], version: str) -> list[str]:
    return sorted(a for a, v in aliases.items() if v == version)


def _summary(av: ArtifactVersion, aliases: dict[str, str]) -> dict[str, Any]:
    m = av.manifest
    return {
        "ref": av.ref,
        "name": av.name,
        "version": av.version,
        "type": m.get("type"),
        "created": m.get("created"),
        "files": len(m.get("files") or []),
        "size": _size(m),
        "digest": m.get("digest"),
        "aliases": _aliases_of(aliases, av.version),
    }


def run_ls(args: argparse.Namespace) -> int:

    reg = _registry(args)
    if args.name:
        aliases = reg.aliases(args.name)
        rows = [_summary(reg.resolve(f"{args.name}:{v}"), aliases) for v in reg.versions(args.name)]
        if not rows:
            known = ", ".join(reg.artifacts()) or "none"
            raise InvalidInputError(
                f"artifact {args.name!r} has no versions in {reg.store.url}/{reg.prefix}; artifacts there: {known}"
            )
        if args.json:
            emit_json(rows)
            return 0
        for r in rows:
            emit(
                f"{r['version']:<6} {r['created'] or '?':<32} {r['files']:>5} files {human_size(r['size']):>8}  "
                f"{r['digest'][:12]}  {','.join(r['aliases'])}"
            )
        return 0
    rows = []
    for name in reg.artifacts():
        aliases = reg.aliases(name)
        versions = reg.versions(name)
        rows.append(
            {
                "name": name,
                "versions": len(versions),
                "latest": aliases.get("latest"),
                "aliases": {a: v for a, v in aliases.items() if a != "latest"},
            }
        )
    if args.json:
        emit_json(rows)
        return 0
    if not rows:
        warn(f"no artifacts in {reg.store.url}/{reg.prefix}")
    for r in rows:
        extra = " ".join(f"{a}={v}" for a, v in r["aliases"].items())
        emit(f"{r['name']:<32} {r['versions']:>4} versions  latest {r['latest']:<6} {extra}".rstrip())
    return 0


def run_show(args: argparse.Namespace) -> int:

    reg = _registry(args)
    av = reg.resolve(args.ref)
    m = av.manifest
    info = {
        **_summary(av, reg.aliases(av.name)),
        "created_by": m.get("created_by"),
        "metadata": av.metadata,
        "file_list": m.get("files") or [],
        "produced_by_run": m.get("run"),
        "used_by_runs": reg.used_by(av.ref),
    }
    if args.json:
        emit_json(info)
        return 0
    emit(f"{av.ref}  ({', '.join(info['aliases']) or 'no aliases'})")
    by = got if isinstance(got := m.get("created_by"), dict) else {}
    emit(f"  type     {info['type'] or '-'}")
    emit(f"  created  {info['created']} by {by.get('host', '?')} pid {by.get('pid', '?')}")
    emit(f"  digest   {info['digest']}")
    run = info["produced_by_run"] if isinstance(info["produced_by_run"], dict) else None
    if run:
        emit(f"  run      logged by run {run.get('run_id')} ({run.get('workflow')})")
    for used in info["used_by_runs"]:
        emit(f"  used by  run {used.get('run_id')} ({used.get('workflow')}) at {used.get('time')}")
    emit(f"  files    {info['files']} ({human_size(info['size'])})")
    for f in info["file_list"]:
        if isinstance(f, dict):
            emit(f"    {human_size(int(f.get('size') or 0)):>8}  {str(f.get('sha256'))[:12]}  {f.get('name')}")
    for k, v in av.metadata.items():
        emit(f"  metadata {k}: {v}")
    return 0


def run_get(args: argparse.Namespace) -> int:
    reg = _registry(args)
    av = reg.resolve(args.ref)
    dest = av.download(args.dest)
    if args.json:
        emit_json({"ref": av.ref, "dest": dest, "files": av.files()})
    else:
        emit(f"{av.ref}: {len(av.files())} files written to {dest}")
    return 0


def _exact_version(reg: Registry, ref: str, what: str) -> tuple[str, str]:

    name, version = parse_ref(ref)
    if not (version.startswith("v") and version[1:].isdigit()):
        target = reg.resolve(ref).version
        raise InvalidInputError(
            f"{what} needs a version number, not {ref!r}: write {name}:{target} (what {ref!r} points at now)"
        )
    return name, version


def run_alias(args: argparse.Namespace) -> int:
    reg = _registry(args)
    name, version = _exact_version(reg, args.ref, "artifacts alias")
    before = reg.aliases(name).get(args.alias)
    reg.set_alias(name, args.alias, version)
    if args.json:
        emit_json({"name": name, "alias": args.alias, "version": version, "was": before})
    else:
        moved = f" (was {before})" if before and before != version else ""
        emit(f"{name}:{args.alias} -> {version}{moved}")
    return 0


def run_rm(args: argparse.Namespace) -> int:
    reg = _registry(args)
    name, version = _exact_version(reg, args.ref, "artifacts rm")
    av = reg.resolve(f"{name}:{version}")
    aliases = [a for a in _aliases_of(reg.aliases(name), version) if a != "latest"]
    reg.remove_version(name, version, delete_aliases=args.delete_aliases, dry_run=args.dry_run)  # refused alike
    if args.json:
        emit_json(
            {"ref": av.ref, "removed": not args.dry_run, "aliases_removed": aliases if args.delete_aliases else []}
        )
    else:
        verb = "would remove" if args.dry_run else "removed"
        emit(f"{verb} {av.ref}" + (f" and its aliases {', '.join(aliases)}" if aliases and args.delete_aliases else ""))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    reg = _registry(args)
    if args.ref is None:
        refs = [f"{n}:{v}" for n in reg.artifacts() for v in reg.versions(n)]
    elif ":" in args.ref:
        refs = [reg.resolve(args.ref).ref]
    else:
        refs = [f"{args.ref}:{v}" for v in reg.versions(args.ref)]
        if not refs:
            reg.resolve(args.ref)  # raises, naming what exists
    reports = [reg.verify(r) for r in refs]
    if args.json:
        emit_json([{"ref": r.ref, "ok": r.ok, "checked": r.checked, "problems": r.problems} for r in reports])
    else:
        for r in reports:
            emit(
                f"{'ok' if r.ok else 'FAILED':<7} {r.ref}  {r.checked} files" + "".join(f"\n  {p}" for p in r.problems)
            )
    bad = [r for r in reports if not r.ok]
    if bad:
        warn(
            f"artifacts verify: {len(bad)} of {len(reports)} versions have problems; "
            "re-log them from their sources, or remove them (scout-persist artifacts rm NAME:vN)"
        )
    elif not reports:
        warn(f"artifacts verify: no versions in {reg.store.url}/{reg.prefix}")
    return 1 if bad else 0
