"""Files: a file and a folder as inputs, read by their tasks."""

from pathlib import Path

from oracle_runtime import flow, task


@task(type="integer")
def lines(path: Path) -> int:
    with open(path) as fh:
        return sum(1 for _ in fh)


@task(type="integer")
def tree(folder: Path) -> int:
    return sum(len(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file())


@task(type="json")
def summary(n_lines: int, n_bytes: int, label: str = "files") -> dict:
    return {"label": label, "lines": n_lines, "bytes": n_bytes}


@flow("Files")
def main(path: Path, folder: Path, label: str = "files"):
    return summary(lines(path), tree(folder), label)


def parameters(data):
    path = data / "in.txt"
    path.write_text("one\ntwo\nthree\n")
    folder = data / "tree"
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "top.txt").write_text("top")
    (folder / "sub" / "deep.txt").write_text("deep")
    return {"path": path, "folder": folder, "label": "files"}
