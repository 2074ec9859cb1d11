"""``scout-persist --help`` and ``--version`` answer without importing any command (the start-up cost of ``--help``
was every command's imports: ~1 s on a loaded machine); timings are in bench/bench_cli_startup.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

import scout_persist
from scout_persist.cli import COMMANDS, SUMMARIES, main


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"scout-persist {scout_persist.__version__}\n"


def test_help_lists_every_command_with_its_summary(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for name, summary in SUMMARIES.items():
        assert f"{name} " in out and " ".join(summary.split()) in out, name
    assert "write_info (write-info)" in out and "--version" in out and "docs/getting-started.md" in out


def test_help_imports_no_command_module():
    probe = (
        "import sys\n"
        "from scout_persist.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('scout_persist'))), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    loaded = set(done.stderr.split())
    assert loaded <= {"scout_persist", "scout_persist.cli", "scout_persist.errors"}, loaded
    assert not {f"scout_persist.cli.{c}" for c in COMMANDS} & loaded


def test_a_command_help_comes_from_its_module(capsys):
    with pytest.raises(SystemExit):
        main(["ls", "--help"])
    assert "--long" in capsys.readouterr().out


def test_an_unknown_command_is_refused_with_the_list(capsys):
    with pytest.raises(SystemExit) as done:
        main(["lsit"])
    assert done.value.code == 2
    assert "invalid choice: 'lsit'" in capsys.readouterr().err
