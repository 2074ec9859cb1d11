"""Every code block of README.md, CONTRIBUTING.md and docs/*.md runs (a new docs/*.md is picked up by itself).

The convention (also in CONTRIBUTING.md, "Code blocks in the docs"):

* Every fence names its language. ``python`` blocks are run; ``sh`` / ``bash`` / ``shell`` blocks are run as bash
  scripts (``set -eu``: every command must exit 0); ``json``, ``toml`` and ``yaml`` blocks are parsed; ``text`` is
  for what is not code (command synopses, printed output, folder layouts) and is not run.  A fence without a
  language, or with another one, fails this test.
* Each block runs in a fresh folder that is both ``$HOME`` and the working directory; the store is ``~/.scout`` in
  that folder (``SCOUT_PERSIST_URL`` names it), ``SCOUT_PERSIST_HMAC_KEY`` and ``SCOUT_PERSIST_COMPRESSION`` unset.
  Python blocks run in this process, under the session's Prefect test harness (flows run as written, against an
  ephemeral API); shell blocks find ``scout-persist`` and ``python`` on ``PATH``.  In a shell block a line starting
  with ``make`` is checked with ``make -n`` in the repository (the target exists) instead of being run.
* Setup a block needs beyond that is said on its first line, a comment a reader can keep when copying it::

      # doc-test: fixtures, s3   (an optional note for the reader, in parentheses)

  ``fixtures``: ``~/.scout`` starts as a copy of the Ruby fixture tree (tests/data/ruby-scout/scout-jobs), so
  Ruby's own jobs are at ``~/.scout/var/jobs/...``.  ``s3``: ``SCOUT_PERSIST_URL=s3://lab-bucket/scout`` on the
  tests' moto S3 server, configured through ``FSSPEC_S3_*`` as a user would (the same endpoint and keys are also
  in ``S3_ENDPOINT``, ``S3_KEY``, ``S3_SECRET``); the bucket is empty.  ``continue``: the
  block runs after the previous block of the same file, in its folder and (Python) its namespace, with its setup.
  Anything else a block needs (a file to read, a folder to list) it creates itself, visibly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ruby_data import RUBY_FIXTURES

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = {"python", "sh", "bash", "shell"}
PARSE = {"json", "toml", "yaml"}
NOT_CODE = {"text"}
DIRECTIVES = {"fixtures", "s3", "continue"}
FENCE = re.compile(r"^(\s*```+)(.*)$")  # also indented, inside a list item
DIRECTIVE = re.compile(r"^#\s*doc-test:\s*(.*)$")
CLEARED = ("SCOUT_PERSIST_URL", "SCOUT_PERSIST_HMAC_KEY", "SCOUT_PERSIST_COMPRESSION")


@dataclass
class Block:
    doc: Path
    line: int  # line of the first code line (after the fence)
    lang: str
    text: str
    directives: set[str] = field(default_factory=set)

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def blocks_of(doc: Path) -> list[Block]:
    """The fenced blocks of ``doc``, with their language and ``# doc-test:`` directives."""
    out: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).strip()
        start = i + 1
        i += 1
        while i < len(lines) and lines[i].rstrip() != fence:
            i += 1
        if i >= len(lines):
            raise AssertionError(f"{doc.relative_to(REPO)}:{start}: code block never closed")
        indent = len(fence) - len(fence.lstrip())
        text = "\n".join(line[indent:] if line[:indent].isspace() else line for line in lines[start:i]) + "\n"
        block = Block(doc, start + 1, lang.split()[0] if lang else "", text)
        first = text.splitlines()[0] if text.strip() else ""
        d = DIRECTIVE.match(first.strip())
        if d:  # "fixtures, s3   (a note for the reader)"
            words = d.group(1).split("(", 1)[0]
            block.directives = {w.strip() for w in words.split(",") if w.strip()}
        out.append(block)
        i += 1
    return out


def sessions() -> list[list[Block]]:
    """Blocks grouped into what runs together: a block starts a session unless it says ``continue``."""
    out: list[list[Block]] = []
    for doc in DOCS:
        if not doc.exists():
            continue
        for block in blocks_of(doc):
            if block.lang not in RUN:
                continue
            if "continue" in block.directives and out and out[-1][0].doc == doc:
                out[-1].append(block)
            else:
                out.append([block])
    return out


ALL = [b for doc in DOCS if doc.exists() for b in blocks_of(doc)]
SESSIONS = sessions()


def test_every_block_follows_the_convention():
    problems = []
    for b in ALL:
        if not b.lang:
            problems.append(f"{b.where}: the fence names no language; use python, sh, json or text (CONTRIBUTING.md)")
        elif b.lang not in RUN | PARSE | NOT_CODE:
            problems.append(
                f"{b.where}: language {b.lang!r} is neither run nor parsed; use one of {sorted(RUN | PARSE | NOT_CODE)}"
            )
        unknown = b.directives - DIRECTIVES
        if unknown:
            problems.append(f"{b.where}: unknown doc-test directive(s) {sorted(unknown)}; known: {sorted(DIRECTIVES)}")
        if b.directives and b.lang not in RUN | NOT_CODE:  # text may quote a directive
            problems.append(f"{b.where}: a {b.lang or 'plain'} block is not run, so its directives mean nothing")
        if "continue" in b.directives and not [s for s in SESSIONS if b in s[1:]]:
            problems.append(f"{b.where}: 'continue' needs an earlier runnable block in the same file")
    assert not problems, "\n".join(problems)
    assert len([b for b in ALL if b.lang in RUN]) >= 20  # the docs do show code


@pytest.mark.parametrize("block", [b for b in ALL if b.lang in PARSE], ids=lambda b: b.where)
def test_data_blocks_parse(block):
    if block.lang == "json":
        json.loads(block.text)
    elif block.lang == "toml":
        import tomllib

        tomllib.loads(block.text)
    else:
        import yaml

        yaml.safe_load(block.text)


@pytest.fixture
def doc_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    # What the default root means, spelled out: scout tasks tell their functions apart per root *name*, and "~/.scout"
    # would name every block's store alike although each has its own HOME.
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(home / ".scout"))
    monkeypatch.chdir(home)
    return home


def _setup(directives: set[str], home: Path, request, monkeypatch) -> None:
    if "fixtures" in directives:
        shutil.copytree(RUBY_FIXTURES / "scout-jobs", home / ".scout", symlinks=True)
    if "s3" in directives:
        request.getfixturevalue("s3_url")  # the S3 server's environment, set up as for every S3 test
        server = request.getfixturevalue("s3_server")
        server.create_bucket("lab-bucket")
        monkeypatch.setenv("SCOUT_PERSIST_URL", "s3://lab-bucket/scout")
        for name, option in (
            ("S3_ENDPOINT", "FSSPEC_S3_ENDPOINT_URL"),
            ("S3_KEY", "FSSPEC_S3_KEY"),
            ("S3_SECRET", "FSSPEC_S3_SECRET"),
        ):
            monkeypatch.setenv(name, server.env()[option])


def _run_python(block: Block, module: types.ModuleType) -> None:
    # Leading newlines keep the doc's line numbers in tracebacks: "README.md", line 42.
    code = compile("\n" * (block.line - 1) + block.text, str(block.doc), "exec")
    exec(code, module.__dict__)  # noqa: S102 - our own docs


def _run_shell(block: Block, home: Path, env_overrides: dict[str, str]) -> None:
    script = []
    for line in block.text.splitlines():
        if re.match(r"^\s*make\b", line):
            line = re.sub(r"^(\s*)make\b", r'\1make -n -C "$DOC_TEST_REPO"', line)
        script.append(line)
    env = {
        **os.environ,
        **env_overrides,
        "DOC_TEST_REPO": str(REPO),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    proc = subprocess.run(
        ["bash", "-c", "set -eu\n" + "\n".join(script)], cwd=home, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, (
        f"{block.where}: the shell block exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: s[0].where)
def test_code_block_runs(session, doc_home, request, monkeypatch):
    first = session[0]
    _setup(first.directives, doc_home, request, monkeypatch)
    name = "doc_" + re.sub(r"\W", "_", first.where)
    module = types.ModuleType(name)
    module.__file__ = str(first.doc)
    sys.modules[name] = module
    try:
        for block in session:
            if block.lang == "python":
                _run_python(block, module)
            else:
                _run_shell(block, doc_home, {})
    finally:
        sys.modules.pop(name, None)
