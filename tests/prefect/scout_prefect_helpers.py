"""Small helpers shared by the Prefect tests (a module name no other test folder uses)."""

from __future__ import annotations

from pathlib import Path


def ran(log: Path) -> list[str]:
    """Task bodies recorded in a side-effect file, in order."""
    return log.read_text().split() if log.exists() else []
