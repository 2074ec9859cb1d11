"""Relocation keeps what works (issue 17 item 6): a dependency recorded under another root that still exists is read
there; one that exists here (a copied tree) or nowhere is looked up on the job's own root."""

from __future__ import annotations

import pytest

from scout_persist.cli import main
from scout_persist.job import Job, JobWriter
from scout_persist.store import Store

DEP = "var/jobs/Shared/base/Default"
TOP = "var/jobs/Mine/top/Default"


def write(store: Store, key: str, value: str, deps=()) -> None:
    w = JobWriter(store, key, type="string")
    w.setup(inputs=[], input_names=[], dependencies=list(deps))
    w.start()
    w.save(value)
    w.done()


def dep_location(store: Store) -> str:
    return store.path(DEP) if store.is_local else f"{store.url}/{DEP}"


@pytest.fixture
def roots(tmp_path):
    shared, mine = Store(str(tmp_path / "shared")), Store(str(tmp_path / "mine"))
    write(shared, DEP, "from the shared root")
    write(mine, TOP, "top", deps=[dep_location(shared)])
    return shared, mine


def test_dependency_under_another_existing_root_is_read_there(roots, capsys):
    shared, mine = roots
    dep = Job(mine.path(TOP)).dependencies[0]
    assert dep.path == shared.path(DEP) and dep.load() == "from the shared root"
    capsys.readouterr()
    assert main(["prov", "--nocolor", mine.path(TOP)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f" done Shared base {shared.path(DEP)}",
        f"done Mine top {mine.path(TOP)}",
    ]


def test_a_copy_under_the_own_root_wins(roots):
    shared, mine = roots
    write(mine, DEP, "the copy")
    dep = Job(mine.path(TOP)).dependencies[0]
    assert dep.path == mine.path(DEP) and dep.load() == "the copy"


def test_gone_everywhere_is_reported_missing_on_the_own_root(roots, capsys):
    shared, mine = roots
    shared.delete("var", recursive=True)
    dep = Job(mine.path(TOP)).dependencies[0]
    assert dep.path == mine.path(DEP)
    capsys.readouterr()
    main(["prov", "--nocolor", mine.path(TOP)])
    assert capsys.readouterr().out.splitlines()[0] == f" missing Shared base {mine.path(DEP)}"


@pytest.mark.s3
def test_object_store_dependency_under_another_prefix(s3_url):
    shared, mine = Store(s3_url + "/shared"), Store(s3_url + "/mine")
    write(shared, DEP, "from s3")
    write(mine, TOP, "top", deps=[dep_location(shared)])
    dep = Job(f"{mine.url}/{TOP}").dependencies[0]
    assert dep.path == f"{shared.url}/{DEP}" and dep.load() == "from s3"
