"""The on-disk states a power cut can leave after a recorded sequence of file-system operations (fs_trace.py).

After the first ``k`` operations of a trace were issued (every crash point ``k``), what is on the disk depends on
what reached it, and file systems promise little about what has not been synced.  The model, bounded so that a
test enumerates it in seconds (as ALICE and CrashMonkey do, by patterns rather than every subset):

Names (create, mkdir, rename, link, unlink, rmdir) -- the *metadata*:
- POSIX: an operation is durable once every folder it changes was fsynced after it (``fsync_dir``); an fsync of the
  file itself does not make its name durable.  Any other issued operation may be lost: the states are every
  operation issued with any **one** of the non-durable ones lost (any one or two under ``make soak``).
- ext4 (data=ordered): the journal commits names in order, and every fsync commits the whole journal: everything
  before the last fsync is on disk and of the rest a **prefix** is.  The states are every such prefix.

Data (per file): what was fsynced is on the disk.  The unsynced bytes of a file (delayed allocation: none reached
the disk until write-back) are, after the crash, **kept** (written back), **lost** (the file as last fsynced: empty
for a new file), **zero-filled** (its size reached the disk, its data did not), **torn** (half of them) or **torn
with a zero-filled tail**.  The variants: every unsynced file kept; all lost; all zero-filled; each file alone in
each damaged form, the others kept; each file alone kept or torn, the others lost.  Files whose names start with
a dot (temporaries: ``.tmp_mv.*``, lock temporaries, clock probes) keep what was written: no reader opens them, only
their presence matters.

Each metadata state is combined with each data variant; identical states (same folders, same names holding the same
bytes) are merged, remembering the first way each arose for messages.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

META = ("mkdir", "create", "link", "rename", "unlink", "rmdir")
# POSIX: states with up to this many non-durable name operations lost (make soak: pairs too)
MAX_LOST = 2 if os.environ.get("SCOUT_PERSIST_SOAK") else 1


@dataclass(frozen=True)
class Trace:
    """What a workload did: the tree before it (all durable), and its operations (fs_trace.Recorder.ops)."""

    initial_files: dict[str, bytes]
    initial_ids: dict[str, int]
    initial_dirs: set[str]
    ops: list[tuple[Any, ...]]

    def without(self, index: int) -> Trace:
        """The same trace with operation ``index`` (an fsync) not made: what if the code did not sync there?"""
        return Trace(self.initial_files, self.initial_ids, self.initial_dirs, self.ops[:index] + self.ops[index + 1 :])


@dataclass(frozen=True)
class State:
    """Folders and files (path -> bytes) on the disk after a crash; ``how``: the first way it arose."""

    dirs: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...]
    how: str = field(compare=False, hash=False)
    crash_point: int = field(compare=False, hash=False)

    @property
    def file_map(self) -> dict[str, bytes]:
        return dict(self.files)

    def materialise(self, root: str, age: float = 3600.0) -> None:
        """Write this state at ``root`` (emptied first); every entry's times set ``age`` seconds back: recovery runs
        after the reboot, later than one lease."""
        if os.path.lexists(root):
            shutil.rmtree(root)
        os.makedirs(root)
        for d in self.dirs:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        past = time.time() - age
        for path, data in self.files:
            full = os.path.join(root, path)
            with open(full, "wb") as fh:
                fh.write(data)
            os.utime(full, (past, past))
        for d in self.dirs:
            os.utime(os.path.join(root, d), (past, past))


class _Names:
    """A namespace of folder nodes (``"d0"`` the root) holding names of folder nodes or file ids (ints)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = defaultdict(dict)
        self.entries["d0"] = {}
        self.count = 1

    def new_dir(self) -> str:
        node = f"d{self.count}"
        self.count += 1
        return node

    def resolve(self, rel: str) -> Any:
        node: Any = "d0"
        for part in _parts(rel):
            node = self.entries[node][part]
        return node

    def parent(self, rel: str) -> tuple[str, str]:
        head, name = posixpath.split(rel)
        return self.resolve(head), name


def _parts(rel: str) -> list[str]:
    return [p for p in rel.split("/") if p not in ("", ".")]


def _apply(entries: dict[str, dict[str, Any]], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "link":
        _, parent, name, node = op
        entries[parent][name] = node
    elif kind == "move":
        _, sp, sn, dp, dn, node = op
        if entries[sp].get(sn) == node:
            del entries[sp][sn]
        entries[dp][dn] = node
    elif kind == "unlink":
        _, parent, name, node = op
        if entries[parent].get(name) == node:
            del entries[parent][name]


def _walk(entries: dict[str, dict[str, Any]]) -> tuple[list[str], list[tuple[str, int]]]:
    dirs: list[str] = []
    files: list[tuple[str, int]] = []
    todo: list[tuple[str, str]] = [("d0", "")]
    seen = set()
    while todo:
        node, path = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        for name, child in entries.get(node, {}).items():
            full = f"{path}/{name}" if path else name
            if isinstance(child, str):
                dirs.append(full)
                todo.append((child, full))
            else:
                files.append((full, child))
    return sorted(dirs), sorted(files)


class CrashModel:
    """The crash states of one trace (see the module's docstring)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        names = _Names()
        for d in sorted(trace.initial_dirs, key=lambda p: p.count("/")):
            parent, name = names.parent(d)
            names.entries[parent][name] = names.new_dir()
        for rel, fid in trace.initial_ids.items():
            parent, name = names.parent(rel)
            names.entries[parent][name] = fid
        self.initial = {k: dict(v) for k, v in names.entries.items()}
        self.node_ops: list[tuple[Any, ...] | None] = []  # per operation: its effect on the names, or None (data)
        self.parents: list[set[str]] = []  # the folders each name operation changes
        self.synced_dirs: list[str | None] = []  # per operation: the folder an fsync_dir syncs
        for op in trace.ops:
            kind = op[0]
            node_op: tuple[Any, ...] | None = None
            parents: set[str] = set()
            synced = None
            if kind == "mkdir":
                parent, name = names.parent(op[1])
                node_op, parents = ("link", parent, name, names.new_dir()), {parent}
            elif kind == "create":
                parent, name = names.parent(op[1])
                node_op, parents = ("link", parent, name, op[2]), {parent}
            elif kind == "link":
                parent, name = names.parent(op[2])
                node_op, parents = ("link", parent, name, names.resolve(op[1])), {parent}
            elif kind == "rename":
                sp, sn = names.parent(op[1])
                dp, dn = names.parent(op[2])
                node_op, parents = ("move", sp, sn, dp, dn, names.entries[sp][sn]), {sp, dp}
            elif kind in ("unlink", "rmdir"):
                parent, name = names.parent(op[1])
                node_op, parents = ("unlink", parent, name, names.entries[parent][name]), {parent}
            elif kind == "fsync_dir":
                synced = names.resolve(op[1])
            if node_op is not None:
                _apply(names.entries, node_op)
            self.node_ops.append(node_op)
            self.parents.append(parents)
            self.synced_dirs.append(synced)
        self.final_names = names.entries
        # POSIX: the index at which each name operation became durable (every folder it changes fsynced after it)
        n = len(trace.ops)
        self.durable_at = [n + 1] * n
        for i, parents in enumerate(self.parents):
            if self.node_ops[i] is None:
                continue
            at = i
            for p in parents:
                later = next((j for j in range(i + 1, n) if self.synced_dirs[j] == p), None)
                at = max(at, later if later is not None else n + 1)
            self.durable_at[i] = at

    # -- states -------------------------------------------------------------------------------------------------
    def final_state(self) -> tuple[dict[str, bytes], set[str]]:
        """Everything issued on the disk: the files and folders the workload left (checked against the real tree)."""
        content = {fid: self.trace.initial_files[rel] for rel, fid in self.trace.initial_ids.items()}
        for op in self.trace.ops:
            _write(content, op)
        dirs, files = _walk(self.final_names)
        return {path: content.get(fid, b"") for path, fid in files}, set(dirs)

    def states(self) -> Iterator[State]:
        """Every crash state of the model, once each (and once more with ``crash_point`` at the end when the finished
        save can leave it too: ``self.final`` counts those); ``self.enumerated`` counts the combinations tried."""
        self.enumerated = 0
        seen: set[State] = set()
        final: set[State] = set()
        content = {fid: self.trace.initial_files[rel] for rel, fid in self.trace.initial_ids.items()}
        synced = dict(content)
        ops = self.trace.ops
        last_fsync = -1
        for k in range(len(ops) + 1):
            if k > 0:
                op = ops[k - 1]
                kind = op[0]
                _write(content, op)
                if kind == "create":
                    content.setdefault(op[2], b"")
                elif kind == "fsync":
                    synced[op[1]] = content.get(op[1], b"")
                if kind in ("fsync", "fsync_dir"):
                    last_fsync = k - 1
            meta = [i for i in range(k) if self.node_ops[i] is not None]
            posix_pending = [i for i in meta if self.durable_at[i] >= k]
            ext4_pending = [i for i in meta if i > last_fsync]
            lost_sets: dict[frozenset[int], str] = {}
            for p in range(len(ext4_pending), -1, -1):
                lost = frozenset(ext4_pending[p:])
                lost_sets.setdefault(lost, "ext4 journal prefix" if lost else "every name")
            for size in range(1, MAX_LOST + 1):
                for lost_tuple in itertools.combinations(posix_pending, size):
                    lost_sets.setdefault(frozenset(lost_tuple), "POSIX")
            for lost, kind_of in lost_sets.items():
                entries = {node: dict(names) for node, names in self.initial.items()}
                entries = defaultdict(dict, entries)
                for i in meta:
                    if i not in lost:
                        _apply(entries, self.node_ops[i])  # type: ignore[arg-type]
                dirs, files = _walk(entries)
                fids = {fid for path, fid in files if not posixpath.basename(path).startswith(".")}
                unsynced = sorted(fid for fid in fids if content.get(fid, b"") != synced.get(fid, b""))
                lost_text = (
                    f"{kind_of}, lost: " + "; ".join(_describe(ops[i]) for i in sorted(lost)) if lost else kind_of
                )
                for variant, label in _variants(unsynced, content, synced):
                    self.enumerated += 1
                    state_files = tuple(
                        (path, variant[fid] if fid in variant else content.get(fid, b"")) for path, fid in files
                    )
                    state = State(
                        tuple(dirs),
                        state_files,
                        f"crash after {k} of {len(ops)} operations"
                        + (f" (last: {_describe(ops[k - 1])})" if k else "")
                        + f"; names: {lost_text}; data: {label}",
                        k,
                    )
                    if state not in seen:
                        seen.add(state)
                        yield state
                    elif k == len(ops) and state not in final:  # also a state of the finished save: say so once
                        final.add(state)
                        yield state


def _write(content: dict[int, bytes], op: tuple[Any, ...]) -> None:
    """Apply a data operation (write, truncate) to the files' contents; others change none."""
    if op[0] == "write":
        _, fid, offset, data = op
        buf = bytearray(content.get(fid, b"").ljust(offset, b"\0"))
        buf[offset : offset + len(data)] = data
        content[fid] = bytes(buf)
    elif op[0] == "truncate":
        _, fid, size = op
        content[fid] = content.get(fid, b"")[:size].ljust(size, b"\0")


def _variants(unsynced: list[int], content: dict[int, bytes], synced: dict[int, bytes]) -> Iterator[tuple[dict, str]]:
    """The data variants over the unsynced files (see the module's docstring), as {fid: bytes} overrides."""
    forms = {fid: _forms(synced.get(fid, b""), content.get(fid, b"")) for fid in unsynced}
    yield {}, "all kept" if unsynced else "all synced"
    if not unsynced:
        return
    yield {fid: f["lost"] for fid, f in forms.items()}, "every unsynced file lost"
    yield {fid: f["zero-filled"] for fid, f in forms.items()}, "every unsynced file zero-filled"
    for fid, f in forms.items():
        for form in ("lost", "zero-filled", "torn", "torn, zero-filled tail"):
            yield {fid: f[form]}, f"file #{fid} {form}, the others kept"
        others_lost = {other: forms[other]["lost"] for other in unsynced if other != fid}
        yield others_lost, f"file #{fid} kept, the others lost"
        yield {**others_lost, fid: f["torn"]}, f"file #{fid} torn, the others lost"


def _forms(base: bytes, full: bytes) -> dict[str, bytes]:
    """The forms an unsynced file may take: ``base`` is what was fsynced, ``full`` what was written."""
    d = 0
    while d < min(len(base), len(full)) and base[d] == full[d]:
        d += 1
    torn = full[: d + (len(full) - d) // 2]
    return {
        "lost": base,
        "zero-filled": full[:d] + b"\0" * (len(full) - d),
        "torn": torn,
        "torn, zero-filled tail": torn + b"\0" * (len(full) - len(torn)),
    }


def _describe(op: tuple[Any, ...]) -> str:
    if op[0] == "write":
        return f"write #{op[1]} @{op[2]} ({len(op[3])} bytes)"
    return " ".join(str(x) for x in op)
