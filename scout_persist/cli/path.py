"""``scout-persist path -m MODULE WORKFLOW TASK [task options]``: where Ruby Scout puts that job, and why.

Reads the arguments as ``scout workflow task`` does (:mod:`scout_persist.task_args`: Ruby's option passes,
shortcuts, list splitting, ``-jn``, ``-pf``, ``--load_inputs``, ``-od``) against workflows declared in Python
(:class:`scout_persist.workflow.Workflow` objects found in ``MODULE``, a module name or a ``.py`` file), and prints
the job's path under the store root, its name and the digest string its ``_<md5>`` is computed from.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
from typing import TYPE_CHECKING

from ..errors import InvalidInputError
from ..store import store_url
from ..task_args import task_job
from ..workflow import Workflow
from . import SUMMARIES
from .output import emit, emit_json

if TYPE_CHECKING:
    from ..task_args import WorkflowResolver
    from ..workflow import Workflow


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "path",
        help=SUMMARIES["path"],
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "-m",
        "--module",
        required=True,
        help="a module name or .py file declaring the workflows (scout_persist.workflow.Workflow objects)",
    )
    p.add_argument("--root", default=None, help="store root for the printed path (default $SCOUT_PERSIST_URL)")
    p.add_argument("--json", action="store_true", help="print path, name and digest string as JSON")
    p.add_argument(
        "task_argv",
        nargs=argparse.REMAINDER,
        help="WORKFLOW TASK and the task's options, exactly as given to 'scout workflow task'",
    )
    p.set_defaults(run=run)


def workflows_in(spec: str) -> dict[str, Workflow]:
    """The Workflow objects a module (name, or path of a .py file) defines, by name."""

    if spec.endswith(".py") or os.sep in spec:
        if not os.path.isfile(spec):
            raise InvalidInputError(f"--module {spec!r} is not a file; give a .py file or an importable module name")
        loader = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(spec))[0], spec)
        if loader is None or loader.loader is None:  # not a file Python imports (e.g. a .txt)
            raise InvalidInputError(
                f"--module {spec!r} is not a Python file; give a .py file or an importable module name"
            )
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(spec)
        except ImportError as exc:
            raise InvalidInputError(
                f"--module {spec!r} cannot be imported ({exc}); give a module on the "
                "Python path or the path of a .py file"
            ) from exc
    found = {w.name: w for w in vars(module).values() if isinstance(w, Workflow)}
    if not found:
        raise InvalidInputError(
            f"--module {spec!r} declares no scout_persist.workflow.Workflow; declare one, e.g. "
            "Baking = Workflow('Baking'); Baking.task(...)"
        )
    return found


def resolver(workflows: dict[str, Workflow]) -> WorkflowResolver:
    """Map the workflow argument to a declared Workflow: its name, or a Ruby ``.rb`` file declaring it (the module
    that ``extend Workflow`` there), as ``scout workflow task`` accepts both."""

    def resolve(arg: str) -> Workflow:
        name = arg
        if arg.endswith(".rb") and os.path.isfile(arg):
            with open(arg, encoding="utf-8") as fh:
                found = re.findall(r"^module (\w+)\s*\n\s*extend Workflow", fh.read(), re.M)
            name = found[0] if len(found) == 1 else arg
        if name not in workflows:
            raise InvalidInputError(
                f"workflow {arg!r} is not declared in the module given with -m; declared: {sorted(workflows)}"
            )
        return workflows[name]

    return resolve


def run(args: argparse.Namespace) -> int:

    argv = [a for a in args.task_argv if a != "--"]
    job = task_job(argv, resolver(workflows_in(args.module)), cwd=os.getcwd())
    path = f"{store_url(args.root).rstrip('/')}/{job.key}"
    if args.json:
        emit_json(
            {
                "path": path,
                "key": job.key,
                "name": job.name,
                "digest_str": job.digest_str,
                "hash": job.hash,
                "non_default_inputs": job.non_default_inputs,
            }
        )
    else:
        emit(path)
        emit(f"name: {job.name}")
        emit(f"digest string: {job.digest_str}")
    return 0
