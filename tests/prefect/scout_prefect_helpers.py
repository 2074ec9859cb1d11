"""Small helpers shared by the Prefect tests (a module name no other test folder uses)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def ran(log: Path) -> list[str]:
    """Task bodies recorded in a side-effect file, in order."""
    return log.read_text().split() if log.exists() else []


def kill_group(child: subprocess.Popen) -> None:
    """SIGKILL the child's process group (a flow and the Prefect API server it started), even when it is over."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()
