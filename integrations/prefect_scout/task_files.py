"""``job_files()``: inside a scout task, the job's file outputs.

::

    @scout_task(type="file")
    def report(rows: int) -> str:
        files = job_files()
        files.put("counts.json", b"{}")
        with files.open("table.tsv", "w") as fh:
            fh.write("k\\tv\\n")
        fig.savefig(files.path("plots/fig.png"))
        return files.path("table.tsv")      # a type="file" result points into <job>.files/

The files are staged while the body runs and published into ``<job>.files/`` when the job commits, on every
backend (see :mod:`scout_persist.file_outputs` for what holds on local disks and on object stores); a failed or
killed run publishes none of them.  ``Job(path).files()`` lists them, ``Job(path).open_file(name)`` reads them back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scout_persist.errors import InvalidInputError

from . import plans

if TYPE_CHECKING:
    from scout_persist.file_outputs import JobFiles  # the type the running job's writer hands out


class NoScoutTask(InvalidInputError):
    """``job_files()`` was called outside the body of a running scout task."""


def job_files() -> JobFiles:
    """The file outputs of the scout task run in progress (its job's ``.files/``, published on commit)."""
    run = plans.current()
    writer = run.writer if run is not None else None
    if writer is None:
        raise NoScoutTask(
            "job_files() was called outside the body of a running scout task: it hands out the files of the task's "
            "job; call it inside a function decorated with @scout_task (plain code: JobWriter(...).files)"
        )
    files: JobFiles = writer.files
    return files


__all__ = ["NoScoutTask", "job_files"]
