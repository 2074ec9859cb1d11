"""Shared test fixtures: the Ruby ground truth and fresh store roots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
RUBY_FIXTURES = TESTS / "data" / "ruby-scout"
SHARED_FIXTURES = TESTS.parent.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def ruby_fixtures() -> Path:
    """The fixture folder written by the real Ruby Scout (read-only: copy before writing)."""
    return RUBY_FIXTURES


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((RUBY_FIXTURES / "manifest.json").read_text())


@pytest.fixture
def relocated_jobs(tmp_path) -> Path:
    """A fresh copy of the fixture scout root: every absolute path inside it is stale."""
    root = tmp_path / "elsewhere" / ".scout"
    shutil.copytree(RUBY_FIXTURES / "scout-jobs", root, symlinks=True)
    return root
