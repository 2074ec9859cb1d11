"""scout_persist/settings.py: every environment variable read and checked in one place, at the time it is needed.

A wrong value names the variable, the value, the rule and the fix; no other module of the package or the plug-in
reads the environment; the table in docs/getting-started.md lists every variable.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from scout_persist import payload, runs, settings
from scout_persist.errors import InvalidInputError, PickleNotAllowed
from scout_persist.store import backend

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("word", ["0", "false", "No", " off "])
def test_allow_pickle_off(word, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_ALLOW_PICKLE", word)
    assert settings.allow_pickle() is False
    with pytest.raises(PickleNotAllowed):
        payload.require_pickle_allowed("store", "x")


@pytest.mark.parametrize("word", ["1", "true", "YES", "on", "", "  "])
def test_allow_pickle_on(word, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_ALLOW_PICKLE", word)
    assert settings.allow_pickle() is True


def test_allow_pickle_maybe_is_refused_not_taken_as_yes(monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_ALLOW_PICKLE", "maybe")
    with pytest.raises(InvalidInputError) as err:
        payload.pickle_allowed()
    msg = str(err.value)
    assert "SCOUT_PERSIST_ALLOW_PICKLE='maybe' is neither on nor off" in msg
    assert "1/true/yes/on or 0/false/no/off" in msg and "set SCOUT_PERSIST_ALLOW_PICKLE=0 to forbid pickles" in msg


@pytest.mark.parametrize(
    "name, value, reader, words",
    [
        ("SCOUT_PERSIST_RUN_LEASE", "soon", runs.lease_seconds, ["not a number of seconds > 0", "=60 (the default)"]),
        ("SCOUT_PERSIST_RUN_LEASE", "0", runs.lease_seconds, ["> 0"]),
        ("SCOUT_PERSIST_RUN_FLUSH", "-1", runs.flush_seconds, ["not a number of seconds >= 0", "=1 (the default)"]),
        ("SCOUT_PERSIST_RUN_FLUSH", "nan", runs.flush_seconds, [">= 0"]),
        ("SCOUT_PERSIST_DURABILITY", "Sometimes", backend.durability, ["is not a durability", "'safe'", "'fast'"]),
        ("SCOUT_PERSIST_MAX_ENTRY_SIZE", "lots", settings.max_entry_size, ["size 'lots'", "500M", "unset it"]),
        ("SCOUT_PERSIST_SCAN_FORK", "auto", settings.scan_fork, ["neither on nor off", "unset SCOUT_PERSIST_SCAN"]),
    ],
)
def test_a_wrong_value_names_variable_value_rule_and_fix(name, value, reader, words, monkeypatch):
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidInputError) as err:
        reader()
    msg = str(err.value)
    assert name in msg and repr(value) in msg and all(w in msg for w in words), msg


def test_values_are_read_when_needed(monkeypatch):
    monkeypatch.delenv("SCOUT_PERSIST_RUN_LEASE", raising=False)
    assert settings.run_lease() == 60.0
    monkeypatch.setenv("SCOUT_PERSIST_RUN_LEASE", "5")
    assert runs.lease_seconds() == 5.0
    monkeypatch.setenv("SCOUT_PERSIST_MAX_ENTRY_SIZE", "1.5K")
    assert settings.max_entry_size() == 1536
    monkeypatch.setenv("SCOUT_PERSIST_DURABILITY", " FAST ")
    assert backend.durability() == "fast"
    monkeypatch.setenv("SCOUT_PERSIST_SCAN_FORK", "0")
    assert settings.scan_fork() is False
    monkeypatch.delenv("SCOUT_PERSIST_SCAN_FORK")
    assert settings.scan_fork() is None
    monkeypatch.setenv("SCOUT_PERSIST_URL", "")
    assert settings.store_url() is None  # empty: the default root
    monkeypatch.setenv("SCOUT_PERSIST_URL", " /x")
    assert settings.store_url() == " /x"  # kept as set: the store refuses it by name


def _environment_reads(path: Path) -> list[str]:
    """``os.environ`` / ``os.getenv`` / ``environ`` uses in a source file (attribute or imported name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb", "putenv", "unsetenv"):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if {a.name for a in node.names} & {"environ", "getenv", "environb"}:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_only_the_settings_module_reads_the_environment():
    sources = [*(REPO / "scout_persist").rglob("*.py"), *(REPO / "integrations").rglob("*.py")]
    found = [hit for p in sources if p != REPO / "scout_persist" / "settings.py" for hit in _environment_reads(p)]
    assert not found, f"read the environment through scout_persist.settings instead: {found}"


def test_the_docs_table_lists_every_variable():
    text = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
    table = {m.group(1) for m in re.finditer(r"^\| `([A-Z_]+)` \|", text, re.M)}
    assert {v.name for v in settings.VARIABLES} <= table, sorted({v.name for v in settings.VARIABLES} - table)


def test_the_core_never_imports_the_cli():
    for path in (REPO / "scout_persist").rglob("*.py"):
        if "cli" in path.relative_to(REPO / "scout_persist").parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = ("." * node.level) + (node.module or "")
                cli = re.match(r"^(\.+cli\b|scout_persist\.cli\b)", target)
                assert not cli, f"{path}:{node.lineno} imports {target}"
