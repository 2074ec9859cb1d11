"""``scout-persist prov JOB``: the dependency tree as Ruby prints it, or --json / --dot / --plot FILE.png|svg."""

from __future__ import annotations

import argparse
import sys

from . import SUMMARIES
from .jobs import not_a_job
from .output import emit, emit_json, use_color
from .plot import plot
from .provenance import Reporter, build, to_dot, to_json
from .target import resolve_job


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prov", help=SUMMARIES["prov"])
    p.add_argument("job", help="job path, fsspec URL, or key under $SCOUT_PERSIST_URL")
    p.add_argument("-i", "--inputs", default="", help="comma-separated inputs to append to each line")
    p.add_argument(
        "-if",
        "--info_fields",
        "--info-fields",
        dest="info_fields",
        default="",
        help="comma-separated .info fields to append to each line",
    )
    p.add_argument(
        "-e",
        "--expand_repeats",
        "--expand-repeats",
        dest="expand_repeats",
        action="store_true",
        help="print the whole subtree of dependencies already shown",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("-p", "--plot", metavar="FILE", help="draw the graph to FILE (.png, .svg or .pdf) with matplotlib")
    out.add_argument("--json", action="store_true", help="print the tree as JSON")
    out.add_argument("--dot", action="store_true", help="print the graph in Graphviz DOT")
    p.add_argument("--root", help="store root for keys (default $SCOUT_PERSIST_URL or ~/.scout)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ref = resolve_job(args.job, args.root)
    has_info = ref.store.exists(ref.info_key)
    if len(ref.key.split("/")) < 5 or (not has_info and (ref.store.isdir(ref.key) or not ref.store.exists(ref.key))):
        raise not_a_job(ref)
    root = build(ref)
    if args.json:
        emit_json(to_json(root))
        return 0
    if args.dot:
        sys.stdout.write(to_dot(root))
        return 0
    if args.plot:
        written = plot(
            root,
            args.plot,
            inputs=[s for s in args.inputs.split(",") if s],
            info_fields=[s for s in args.info_fields.split(",") if s],
        )
        emit(written)
        return 0
    reporter = Reporter(
        root,
        colored=use_color(args),
        inputs=[s for s in args.inputs.split(",") if s],
        info_fields=[s for s in args.info_fields.split(",") if s],
        expand_repeats=args.expand_repeats,
    )
    for line in reporter.lines():
        emit(line)
    return 0
