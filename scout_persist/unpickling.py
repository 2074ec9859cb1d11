"""How a stored pickle finds the classes it names — and what it says when one is not importable here.

A value pickled in a script run as a program (``python pipeline.py``) names its classes ``__main__.RidgeModel``.
Loaded anywhere else — ``scout-persist resume`` (which loads the flow's file as a module), another script, a notebook
— ``__main__`` is another program.  :func:`main_module` names the module that plays ``__main__`` for the loads
inside a block (``resume`` names the flow's own module, so the jobs of the run it resumes load).  A class that cannot
be found raises :class:`~scout_persist.errors.ClassNotImportable` naming the class and the fix, never a "corrupt
payload": the bytes are fine, this process lacks the code.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import ClassNotImportable

if TYPE_CHECKING:
    from typing_extensions import Buffer

_MAIN_NAMES = ("__main__", "__mp_main__")  # (multiprocessing's name for the parent's script in a spawned child)
_main: ContextVar[ModuleType | None] = ContextVar("scout_persist_main_module", default=None)


@contextlib.contextmanager
def main_module(module: ModuleType | None) -> Iterator[None]:
    """Inside the block (this thread and the contexts copied from it), a pickle's ``__main__.X`` is looked up in
    ``module`` first: the module of the script that stored it, loaded here under another name."""
    token = _main.set(module)
    try:
        yield
    finally:
        _main.reset(token)


def _attribute(module: ModuleType | None, qualname: str) -> Any:
    obj: Any = module
    for part in qualname.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part, None)
    return obj


def _where(module: ModuleType | None) -> str:
    if module is None:
        return "no module"
    path = getattr(module, "__file__", None)
    return f"{module.__name__} ({path})" if path else repr(module.__name__)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in _MAIN_NAMES:
            alias = _main.get()
            for candidate in (alias, sys.modules.get("__main__"), sys.modules.get("__mp_main__")):
                found = _attribute(candidate, name)
                if found is not None:
                    return found
            short = name.rsplit(".", 1)[-1]
            here = _where(alias or sys.modules.get("__main__"))
            raise ClassNotImportable(
                f"class {name!r} of __main__ is not importable here: the value was stored by a script run as a "
                f"program (python script.py), which defined {short}, and __main__ here is {here}. "
                f"Fix: move {short} to a module (e.g. models.py, then `from models import {short}` in the script) "
                "and recompute, so its results load in any process; or load them inside "
                "scout_persist.unpickling.main_module(<the script's module>)"
            )
        try:
            return super().find_class(module, name)
        except ModuleNotFoundError as exc:
            raise ClassNotImportable(
                f"class {name!r} of module {module!r} is not importable here ({exc}); install the package that "
                f"defines it, or put {module!r} on sys.path, before loading"
            ) from None
        except AttributeError:
            raise ClassNotImportable(
                f"module {module!r} here has no {name!r} (renamed or removed since the value was stored?); "
                f"restore {name} in {module}, or recompute the value with the current code"
            ) from None


def loads(head: Buffer, buffers: list[Any]) -> Any:
    """``pickle.loads(head, buffers=buffers)`` with classes found by the rules above.

    Without :func:`main_module` in force, pickle's own (zero-copy) load runs first, and only a failed class lookup
    is replayed by the rules above, for their answer or their message."""
    if _main.get() is None:
        try:
            return pickle.loads(head, buffers=buffers)  # noqa: S301 - callers verify the HMAC first
        except (AttributeError, ImportError):
            pass  # a class not found: the replay below finds it (e.g. in __mp_main__) or says which and why
    return _Unpickler(io.BytesIO(head), buffers=buffers).load()


__all__ = ["loads", "main_module"]
