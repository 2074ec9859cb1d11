"""How Ruby's ``scout workflow task`` turns its argument list into a job (SCOUT_FORMAT.md §5, §11.5).

Ruby reads the arguments in three passes over one shrinking list (scout-essentials ``SOPT.consume``): the global
``scout`` options, the ``task`` command options (``-jn``, ``-pf``, ``--load_inputs``, ``-od`` ...), then one option
per input of the task and of its dependencies (``Task#recursive_inputs``). :func:`parse_task_argv` reproduces the
passes and :func:`task_job` builds the job with :meth:`Workflow.job`, so a Python caller names the same job path as
the Ruby command line.

Rules reproduced: an option is ``-key`` or ``--key`` (long name or shortcut) with its value after ``=`` or in the next
argument; boolean inputs take no value (``--flag`` is true, ``--flag=false``/``F``/``FALSE``/``no`` false); values
stay raw strings (the job coerces them); a list input is split on ``,`` unless the value names an existing file
(``file``/``path`` lists are always split); repeated options keep the last value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError
from .resource import find
from .rubytext import RUBY_WS
from .rubyvalues import ScoutPath, Step
from .workflow import Input, JobSpec, Workflow, format_input

# (shortcut, long name, takes a value), in Ruby's registration order: `scout` first, then `scout workflow task`.
GLOBAL_OPTIONS: tuple[tuple[str | None, str, bool], ...] = (
    (None, "log", True),
    (None, "dev", True),
    (None, "nocolor", False),
    (None, "nobar", False),
    (None, "locate_file", False),
    ("ck", "config_keys", True),
)
TASK_OPTIONS: tuple[tuple[str | None, str, bool], ...] = (
    ("h", "help", False),
    (None, "workflows", True),
    (None, "nostream", False),
    (None, "update", False),
    (None, "deploy", True),
    (None, "deploy_rules", True),
    (None, "fork", False),
    (None, "exec", False),
    (None, "load_inputs", True),
    (None, "save_inputs", True),
    ("jn", "jobname", True),
    ("pf", "printpath", False),
    ("prov", "provenance", False),
    ("cl", "clean", False),
    ("rcl", "recursive_clean", False),
    ("ct", "clean_task", True),
    ("od", "override_deps", True),
)
# Global flags `scout` reads but leaves in Ruby's shared option hash, which becomes the job inputs.
_LEFT_IN_INPUTS = ("nocolor", "nobar", "dev")
FALSE_WORDS = frozenset(("F", "false", "FALSE", "no"))
_OPTION_RE = re.compile(r"--?(.+?)(?:=(.+))?$", re.M)  # searched anywhere in the argument, as Ruby's String#match

WorkflowResolver = Callable[[str], Workflow]


@dataclass
class TaskCommand:
    """A parsed ``scout workflow task`` command line.

    ``inputs`` holds the provided inputs (raw CLI strings, ``True``/``False`` flags, lists split on ``,``, loaded
    ``--load_inputs`` values and ``Workflow#task`` overrides) ready for :meth:`Workflow.job`; ``options`` the command
    options given (long names); ``rest`` the arguments no pass consumed after the workflow and task.
    """

    workflow: Workflow
    task: str
    jobname: str | None
    inputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    rest: list[str] = field(default_factory=list)

    def job(self, cwd: str | None = None, home: str | None = None) -> JobSpec:
        """The job Ruby builds: ``workflow.job(task, jobname, inputs)``."""
        return self.workflow.job(self.task, self.jobname, self.inputs, cwd=cwd, home=home)


# ------------------------------------------------------------------------------------------ Ruby SOPT


class _Registry:
    """Ruby SOPT's global registry: long names, their shortcuts, and whether they take a value."""

    def __init__(self) -> None:
        self.takes_value: dict[str, bool] = {}
        self.shortcuts: dict[str, str] = {}

    def register(self, short: str | None, long: str, takes_value: bool) -> None:
        short = self._fix_shortcut(short, long)
        if short:
            self.shortcuts[short] = long
        self.takes_value[long] = takes_value  # a later registration of the same name wins, as in Ruby

    def _fix_shortcut(self, short: str | None, long: str) -> str | None:
        """SOPT.fix_shortcut: keep a free shortcut, else lengthen it letter by letter (``flag`` -> ``fl``)."""
        taken = self.shortcuts
        if not short or short not in taken:
            return short
        mine = [s for s, lname in taken.items() if lname == long]
        if mine:
            return mine[0]
        chars = list(long)
        current = [chars.pop(0)]
        short = "".join(current)
        if short in taken and taken[short] != long:
            if "-" in long or "_" in long:
                acc = "".join(p[:1] for p in re.split(r"[_-]", long))
                if acc not in taken:
                    return acc
            elif m := re.search(r"\d+", long):
                acc = long[0] + m.group(0)
                if acc not in taken:
                    return acc
        while short in taken and taken[short] != long:
            nxt = chars.pop(0) if chars else None
            while nxt in (".", "-", "_"):
                nxt = chars.pop(0) if chars else None
            if nxt is None:
                return None
            current.append(nxt)
            short = "".join(current)
        return None if short in taken else short

    def consume(self, args: list[str], into: dict[str, Any]) -> None:
        """SOPT.consume: remove every registered option from ``args`` (in place) and record its value."""
        i = 0
        while i < len(args):
            current = args[i]
            if current == "--":
                break
            m = _OPTION_RE.search(current)
            long = None
            if m:
                key, value = m.group(1), m.group(2)
                long = key if key in self.takes_value else self.shortcuts.get(key)
            if long is None:
                i += 1
                continue
            del args[i]
            if self.takes_value[long]:
                if value is None:
                    if i >= len(args):
                        raise InvalidInputError(
                            f"option {current!r} needs a value but is the last argument; write {current} VALUE "
                            f"or {current}=VALUE"
                        )
                    value = args.pop(i)
                into[long] = value
            else:
                if value is None and i < len(args) and args[i] in FALSE_WORDS:
                    value = args.pop(i)  # Ruby warns and takes `--flag false` as the flag's value
                into[long] = value not in FALSE_WORDS


def _global_registry() -> _Registry:
    reg = _Registry()
    for short, long, takes_value in GLOBAL_OPTIONS + TASK_OPTIONS:
        reg.register(short, long, takes_value)
    return reg


# ----------------------------------------------------------------------------------------- task inputs


def recursive_inputs(workflow: Workflow, task: str, overridden: list[str] | None = None) -> list[Input]:
    """Ruby ``Task#recursive_inputs``: own inputs, then each dependency's, minus names its declaration fixes.

    Duplicates are kept, as in Ruby. A dependency whose ``Workflow#task`` appears as a key in an earlier
    declaration's fixed values is skipped.
    """
    overridden = [] if overridden is None else overridden
    t = workflow._get(task)
    acc = list(t.inputs)
    for dep in t.deps:
        wf = dep.workflow or workflow
        if f"{wf.name}#{dep.task}" in overridden:
            continue
        fixed = dict(dep.inputs or {})
        overridden.extend(k for k in fixed if "#" in str(k))
        for inp in recursive_inputs(wf, dep.task, overridden):
            if inp.name not in fixed:
                acc.append(inp)
    return acc


def split_list(value: str) -> list[str]:
    """Ruby ``String#split(",")``: trailing empty fields dropped, ``""`` -> ``[]``."""
    parts = value.split(",")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _exists(value: str, cwd: str | None) -> bool:
    if value == "" or "\0" in value:
        return False
    return os.path.exists(value if value.startswith("/") else os.path.join(cwd or os.getcwd(), value))


def load_inputs(
    workflow: Workflow, task: str, directory: str, cwd: str | None = None, home: str | None = None
) -> dict[str, Any]:
    """Ruby ``Task#load_inputs(dir)``: the inputs a ``--save_inputs`` directory holds (§8.2).

    ``NAME`` is read as the input's type; ``NAME.as_file`` names a file (``./`` relative to the directory),
    ``NAME.as_path`` a path, ``NAME.as_step`` a job; files named ``Workflow#task[.ext]`` override dependencies.
    """
    where = directory if directory.startswith("/") else os.path.join(cwd or os.getcwd(), directory)
    if not os.path.isdir(where):
        raise InvalidInputError(
            f"--load_inputs {directory!r} is not a directory; pass the directory --save_inputs wrote "
            "(Ruby never unpacks a tar.gz here and silently loads nothing)"
        )
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for inp in recursive_inputs(workflow, task):
        if inp.name in seen:
            continue
        seen.add(inp.name)
        value = _load_input_file(os.path.join(where, inp.name), inp, cwd, home)
        if value is not None:
            out[inp.name] = value
    for entry in sorted(os.listdir(where)):
        if "#" in entry:
            name = entry.partition(".")[0]
            out[name] = _load_input_file(os.path.join(where, entry), Input(name, "file"), cwd, home)
    return out


def _load_input_file(filename: str, inp: Input, cwd: str | None, home: str | None) -> Any:
    if not os.path.exists(filename):
        parent, base = os.path.split(filename)
        matches = sorted(e for e in os.listdir(parent) if e.startswith(base + "."))
        if not matches:
            return None
        filename = os.path.join(parent, matches[0])
    if filename.endswith((".as_file", ".as_path", ".as_step")):
        with open(filename, encoding="utf-8") as fh:
            text = fh.read().strip()
        if filename.endswith(".as_file"):
            return os.path.dirname(filename) + text[1:] if text.startswith("./") else text
        if filename.endswith(".as_path"):
            return ScoutPath(text)
        return Step(find(text, cwd=cwd, home=home))
    if inp.type == "file" or inp.opts_out_of_loading:
        return filename
    if inp.type == "path":
        return ScoutPath(filename)  # Ruby Persist.load(f, :path) is the file itself as a path
    if inp.type in ("folder", "binary"):
        with open(filename, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
        return text.strip(RUBY_WS) if inp.type == "folder" else text
    if inp.type == "tsv":
        raise InvalidInputError(
            f"saved input {filename!r} is a :tsv input; loading a TSV object from saved inputs is not supported; "
            f"pass --{inp.name} with the file path instead"
        )
    return format_input(filename, inp, cwd)


# -------------------------------------------------------------------------------------------- parsing


def _resolver(workflows: Mapping[str, Workflow] | WorkflowResolver) -> WorkflowResolver:
    if callable(workflows):
        return workflows

    def by_name(name: str) -> Workflow:
        try:
            return workflows[name]
        except KeyError:
            raise InvalidInputError(
                f"unknown workflow {name!r}; known workflows: {sorted(workflows)}; pass one of these names or a "
                "resolver function that maps the argument to a Workflow"
            ) from None

    return by_name


def parse_task_argv(
    argv: Sequence[str],
    workflows: Mapping[str, Workflow] | WorkflowResolver,
    cwd: str | None = None,
    home: str | None = None,
) -> TaskCommand:
    """Read ``scout workflow task`` arguments (everything after ``task``) the way Ruby does.

    ``workflows`` maps the workflow argument (a name, or whatever the caller's resolver accepts, e.g. a ``.rb``
    path) to a declared :class:`Workflow`. ``cwd`` is the directory relative file names are checked against.
    """
    args = list(argv)
    reg = _global_registry()
    options: dict[str, Any] = {}
    reg.consume(args, options)
    if len(args) < 2:  # Ruby takes the first two arguments left after the command options
        raise InvalidInputError(
            f"scout workflow task needs <workflow> <task>; got {list(argv)!r}; write e.g. "
            "['Baking', 'bake_muffin_tray', '--add_bluberries']"
        )
    workflow = _resolver(workflows)(args[0])
    task = args[1]
    declared = recursive_inputs(workflow, task)

    for inp in declared:
        reg.register(inp.name[:1], inp.name, inp.type != "boolean")
    given: dict[str, Any] = {}
    reg.consume(args, given)
    names = list(dict.fromkeys(inp.name for inp in declared))
    inputs: dict[str, Any] = {n: options[n] for n in _LEFT_IN_INPUTS if n in options and n in names}
    for name in names:
        if name in given:
            inputs[name] = given[name]
    for inp in declared:
        value = inputs.get(inp.name)
        if "array" in inp.type and isinstance(value, str):
            if not _exists(value, cwd) or "file" in inp.type or "path" in inp.type:
                inputs[inp.name] = split_list(value)

    if options.get("load_inputs"):
        inputs.update(load_inputs(workflow, task, options["load_inputs"], cwd, home))
    if options.get("override_deps"):
        for part in split_list(options["override_deps"]):
            key, _, path = part.partition("=")
            if "#" not in key or not path:
                raise InvalidInputError(
                    f"-od {part!r} is not 'Workflow#task=<path>'; write e.g. -od 'Baking#whisk_eggs=/path/to/job'"
                )
            inputs[key] = path.split("=")[0]

    return TaskCommand(workflow, task, options.get("jobname"), inputs, options, args[2:])


def task_job(
    argv: Sequence[str],
    workflows: Mapping[str, Workflow] | WorkflowResolver,
    cwd: str | None = None,
    home: str | None = None,
) -> JobSpec:
    """The job ``scout workflow task ARGV`` names: :func:`parse_task_argv` then :meth:`Workflow.job`."""
    return parse_task_argv(argv, workflows, cwd, home).job(cwd=cwd, home=home)


def input_shortcuts(workflow: Workflow, task: str) -> dict[str, str]:
    """Shortcut -> long name for the task's inputs, as ``scout workflow task`` assigns them (``-fl`` = ``--flag``)."""
    reg = _global_registry()
    before = set(reg.shortcuts)
    for inp in recursive_inputs(workflow, task):
        reg.register(inp.name[:1], inp.name, inp.type != "boolean")
    return {s: n for s, n in reg.shortcuts.items() if s not in before}


__all__ = [
    "FALSE_WORDS",
    "TaskCommand",
    "input_shortcuts",
    "load_inputs",
    "parse_task_argv",
    "recursive_inputs",
    "split_list",
    "task_job",
]
