"""``scout-persist artifacts ls | show | get | alias | rm | verify`` (#17 item 7), local and on the S3 endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scout_persist.cli import main
from scout_persist.registry import Registry, files_digest


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    reg = Registry(str(r))
    reg.log_artifact(
        "muffins", {"recipe.txt": b"flour, sugar\n", "data/tray.tsv": b"a\tb\n"}, metadata={"batch": 7}, type="dataset"
    )
    reg.log_artifact("muffins", {"recipe.txt": b"flour, sugar, blueberries\n"}, aliases=["production"])
    reg.log_artifact("oven", {"temp": b"180"})
    return r


def test_ls_lists_artifacts_and_versions(root, capsys):
    rc, out, _ = run(capsys, "artifacts", "ls", "--root", str(root))
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("muffins") and "2 versions" in lines[0] and "latest v1" in lines[0]
    assert "production=v1" in lines[0] and lines[1].startswith("oven")
    rc, out, _ = run(capsys, "artifacts", "ls", "--root", str(root), "--json")
    assert json.loads(out) == [
        {"name": "muffins", "versions": 2, "latest": "v1", "aliases": {"production": "v1"}},
        {"name": "oven", "versions": 1, "latest": "v0", "aliases": {}},
    ]
    rc, out, _ = run(capsys, "artifacts", "ls", "muffins", "--root", str(root), "--json")
    rows = json.loads(out)
    assert [r["version"] for r in rows] == ["v0", "v1"] and rows[0]["files"] == 2 and rows[0]["type"] == "dataset"
    assert rows[1]["aliases"] == ["latest", "production"]
    rc, out, _ = run(capsys, "artifacts", "ls", "muffins", "--root", str(root))
    assert out.splitlines()[1].startswith("v1") and "latest,production" in out


def test_ls_of_an_empty_registry_and_of_an_unknown_name(tmp_path, root, capsys):
    rc, out, err = run(capsys, "artifacts", "ls", "--root", str(tmp_path / "empty"))
    assert rc == 0 and out == "" and "no artifacts in" in err
    rc, out, err = run(capsys, "artifacts", "ls", "scones", "--root", str(root))
    assert rc == 2 and "'scones' has no versions" in err and "muffins, oven" in err


def test_the_root_comes_from_scout_persist_url(root, capsys, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(root))
    rc, out, _ = run(capsys, "artifacts", "show", "muffins:v0", "--json")
    shown = json.loads(out)
    assert rc == 0 and shown["ref"] == "muffins:v0" and shown["metadata"] == {"batch": 7}
    assert [f["name"] for f in shown["file_list"]] == ["data/tray.tsv", "recipe.txt"]


def test_show_text(root, capsys):
    rc, out, _ = run(capsys, "artifacts", "show", "muffins:production", "--root", str(root))
    assert rc == 0 and out.startswith("muffins:v1  (latest, production)")
    assert "recipe.txt" in out and "files    1" in out
    rc, _, err = run(capsys, "artifacts", "show", "muffins:staging", "--root", str(root))
    assert rc == 2 and "no alias 'staging'" in err and "production" in err


def test_get_downloads_and_verifies(root, tmp_path, capsys):
    dest = tmp_path / "out"
    rc, out, _ = run(capsys, "artifacts", "get", "muffins:v0", str(dest), "--root", str(root))
    assert rc == 0 and out.strip() == f"muffins:v0: 2 files written to {dest}"
    assert (dest / "data" / "tray.tsv").read_bytes() == b"a\tb\n"
    rc, out, _ = run(capsys, "artifacts", "get", "muffins", str(tmp_path / "j"), "--root", str(root), "--json")
    assert json.loads(out) == {"ref": "muffins:v1", "dest": str(tmp_path / "j"), "files": ["recipe.txt"]}


def test_get_refuses_a_traversing_manifest(root, tmp_path, capsys):
    reg = Registry(str(root))
    key = f"{reg.prefix}/oven/versions/v0.json"
    m = json.loads(reg.store.get(key))
    m["files"][0]["name"] = "../../escaped.txt"
    m["digest"] = files_digest(m["files"])
    reg.store.put(key, json.dumps(m).encode())
    rc, _, err = run(capsys, "artifacts", "get", "oven", str(tmp_path / "dl" / "x"), "--root", str(root))
    assert rc == 2 and "'../../escaped.txt'" in err and "'..' segments" in err
    assert not (tmp_path / "dl").exists() and not list(tmp_path.rglob("escaped.txt"))
    rc, out, err = run(capsys, "artifacts", "verify", "oven", "--root", str(root))
    assert rc == 1 and "FAILED  oven:v0" in out and "unsafe" in out and "1 of 1 versions have problems" in err


def test_alias_moves_and_needs_a_version_number(root, capsys):
    rc, out, _ = run(capsys, "artifacts", "alias", "muffins:v0", "production", "--root", str(root))
    assert rc == 0 and out.strip() == "muffins:production -> v0 (was v1)"
    assert Registry(str(root)).aliases("muffins")["production"] == "v0"
    rc, _, err = run(capsys, "artifacts", "alias", "muffins:production", "best", "--root", str(root))
    assert rc == 2 and "needs a version number" in err and "muffins:v0" in err
    rc, _, err = run(capsys, "artifacts", "alias", "muffins:v0", "v9", "--root", str(root))
    assert rc == 2 and "alias 'v9' is not allowed" in err
    rc, out, _ = run(capsys, "artifacts", "alias", "oven:v0", "hot", "--root", str(root), "--json")
    assert json.loads(out) == {"name": "oven", "alias": "hot", "version": "v0", "was": None}


def test_rm_dry_run_refusal_and_removal(root, capsys):
    reg = Registry(str(root))
    for dry in (["--dry-run"], []):  # the dry run refuses what the real rm refuses (an alias points at it)
        rc, out, err = run(capsys, "artifacts", "rm", "muffins:v1", "--root", str(root), *dry)
        assert rc == 2 and out == "" and "still has the aliases production" in err and "--delete-aliases" in err
    assert reg.versions("muffins") == ["v0", "v1"]
    rc, out, _ = run(capsys, "artifacts", "rm", "muffins:v1", "--root", str(root), "--dry-run", "--delete-aliases")
    assert rc == 0 and out.strip() == "would remove muffins:v1 and its aliases production"
    rc, out, _ = run(capsys, "artifacts", "rm", "muffins:v0", "--root", str(root), "--dry-run")
    assert rc == 0 and out.strip() == "would remove muffins:v0" and reg.versions("muffins") == ["v0", "v1"]
    rc, out, _ = run(capsys, "artifacts", "rm", "muffins:v1", "--root", str(root), "--delete-aliases")
    assert rc == 0 and out.strip() == "removed muffins:v1 and its aliases production"
    assert reg.versions("muffins") == ["v0"] and "production" not in reg.aliases("muffins")
    rc, _, err = run(capsys, "artifacts", "show", "muffins:v1", "--root", str(root))
    assert rc == 2 and "it was removed" in err
    rc, _, err = run(capsys, "artifacts", "rm", "muffins", "--root", str(root))
    assert rc == 2 and "needs a version number" in err and "muffins:v0" in err
    rc, out, _ = run(capsys, "artifacts", "rm", "oven:v0", "--root", str(root), "--json")
    assert json.loads(out) == {"ref": "oven:v0", "removed": True, "aliases_removed": []}
    assert reg.artifacts() == ["muffins"]


def test_verify_all_one_and_damaged(root, capsys):
    rc, out, err = run(capsys, "artifacts", "verify", "--root", str(root))
    assert rc == 0 and out.splitlines() == [
        "ok      muffins:v0  2 files",
        "ok      muffins:v1  1 files",
        "ok      oven:v0  1 files",
    ]
    reg = Registry(str(root))
    blob = reg.store.path(reg.blob_key(reg.use_artifact("oven").entry("temp")["sha256"]))
    with open(blob, "wb") as fh:
        fh.write(b"999")
    rc, out, err = run(capsys, "artifacts", "verify", "--root", str(root), "--json")
    reports = json.loads(out)
    assert rc == 1 and [r["ok"] for r in reports] == [True, True, False]
    assert reports[2]["problems"] == ["temp: sha256 differs from the manifest"]
    assert "1 of 3 versions have problems" in err and "artifacts rm" in err
    rc, out, _ = run(capsys, "artifacts", "verify", "muffins:production", "--root", str(root))
    assert rc == 0 and out.strip() == "ok      muffins:v1  1 files"
    rc, _, err = run(capsys, "artifacts", "verify", "scones", "--root", str(root))
    assert rc == 2 and "'scones' has no versions" in err


@pytest.mark.s3
def test_the_cli_on_s3_in_a_real_process(s3_url, tmp_path):
    """The console entry point in a child process, configured only by environment variables."""
    reg = Registry(s3_url)
    reg.log_artifact("model", {"w.bin": b"\x00\x01" * 100}, aliases=["production"])
    env = {**os.environ, "SCOUT_PERSIST_URL": s3_url}
    cli = [sys.executable, "-c", "import sys; from scout_persist.cli import main; sys.exit(main())"]
    ls = subprocess.run(cli + ["artifacts", "ls", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert ls.returncode == 0, ls.stderr
    assert json.loads(ls.stdout) == [{"name": "model", "versions": 1, "latest": "v0", "aliases": {"production": "v0"}}]
    get = subprocess.run(
        cli + ["artifacts", "get", "model:production", str(tmp_path / "m")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert get.returncode == 0, get.stderr
    assert (tmp_path / "m" / "w.bin").read_bytes() == b"\x00\x01" * 100
    verify = subprocess.run(cli + ["artifacts", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "ok      model:v0" in verify.stdout


def test_show_prints_the_signature_of_a_published_plug_in_job(tmp_path, capsys):
    from scout_persist.job import JobWriter
    from scout_persist.store import Store

    store = Store(str(tmp_path / "root"))
    w = JobWriter(store, "var/jobs/Wf/task/Default", workflow="Wf", task="task", type="json")
    w.setup(inputs=[], input_names=[])
    w.start()
    w.save({"a": 1})
    signature = {"signature_version": 3, "inputs": {}, "dependencies": "d", "code": "c", "version": ""}
    job = w.done(signature=signature)  # where the plug-in records it: .info's own "signature"
    Registry(store.url).log_job("model", job.path)
    rc, out, _ = run(capsys, "artifacts", "show", "model:v0", "--root", store.url)
    assert rc == 0 and "'signature': None" not in out and "'code': 'c'" in out, out
