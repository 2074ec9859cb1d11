"""An argument a scout task cannot digest fails the task run with one message naming the argument and the task.

No second copy from the cache policy, no Prefect line claiming the task runs uncached ("Error encountered when
computing cache key - result will not be persisted"), and no "is not a Scout job key" warning after it.
"""

from __future__ import annotations

import logging

import pytest
from prefect import flow

from prefect_scout import ScoutKeyError, scout_task

RAN: list[str] = []


class Model:
    """An object without a content digest: its pickle or repr may differ between processes."""


@scout_task(type="string")
def fit(model: Model, n: int = 3) -> str:
    RAN.append("fit")
    return "fitted"


@scout_task(type="string", ignore=("model",))
def fit_ignoring(model: Model, n: int = 3) -> str:
    RAN.append("fit_ignoring")
    return "fitted"


@flow(name="Train")
def train(submit: bool = False) -> str:
    return fit.submit(Model()).result() if submit else fit(Model())


@flow(name="Train")
def train_ignoring() -> str:
    return fit_ignoring(Model())


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged():
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("", "prefect", "prefect_scout")]
    for lg in loggers:
        lg.addHandler(handler)
    yield handler.records
    for lg in loggers:
        lg.removeHandler(handler)


@pytest.mark.parametrize("submit", [False, True], ids=["call", "submit"])
def test_undigestible_argument_is_named_once(scout_root, logged, submit):
    RAN.clear()
    state = train(submit=submit, return_state=True)
    assert state.is_failed()
    with pytest.raises(ScoutKeyError) as raised:
        state.result()
    message = str(raised.value)
    assert message.startswith(
        f"input 'model' of scout task Train#fit: a {__name__}.Model value cannot be digested deterministically"
    ), message
    assert message.count("'model'") == 1 and message.count("Train#fit") == 1 and message.count("fit") == 1
    assert "add the argument to ignore=(...)" in message and "__scout_digest__" in message
    assert raised.value.__cause__ is None  # not wrapped in a second error repeating it
    texts = [r.getMessage() for r in logged]
    assert not [t for t in texts if "is not a Scout job key" in t]
    assert not [t for t in texts if "Error encountered when computing cache key" in t]
    assert not [r for r in logged if r.name.startswith("prefect_scout") and r.levelno >= logging.WARNING]
    assert RAN == []  # the body never ran uncached
    assert not list((scout_root / "var").rglob("*.info")) if (scout_root / "var").exists() else True


def test_the_fix_the_message_names_works(scout_root):
    RAN.clear()
    assert train_ignoring() == "fitted"
    assert train_ignoring() == "fitted"
    assert RAN == ["fit_ignoring"]
    assert (scout_root / "var/jobs/Train/fit_ignoring/Default").read_text() == "fitted"
