"""Frames: a categorical DataFrame, changed in place by the flow, totalled and tallied."""

import collections
import decimal
import enum

import numpy as np
import pandas as pd
from oracle_runtime import flow, task


class Mode(enum.Enum):
    SUM = "sum"
    MEAN = "mean"


MODE = Mode.SUM
WEIGHTS = np.array([1.0, 2.0, 3.0, 4.0])
GROUPS = pd.CategoricalDtype(["a", "b", "c"], ordered=True)


@task
def frame(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {"g": pd.Series(["a", "b", "a", "c"][:n], dtype=GROUPS), "x": np.arange(n, dtype=float) * WEIGHTS[:n]}
    )


@task(type="float")
def total(df: pd.DataFrame) -> float:
    grouped = df.groupby("g", observed=False)["x"]
    out = grouped.sum() if MODE is Mode.SUM else grouped.mean()
    return float(out.fillna(0).sum()) + (float(df["y"].sum()) if "y" in df else 0.0)


@task(type="json")
def tally(df: pd.DataFrame) -> dict:
    counts = collections.defaultdict(int)
    for g in df["g"]:
        counts[str(g)] += 1
    return dict(counts)


@task
def ledger(n: int = 3) -> pd.DataFrame:
    amounts = [decimal.Decimal("1.0"), decimal.Decimal("2.50"), decimal.Decimal("-0.125")][:n]
    return pd.DataFrame({"amount": amounts, "who": ["ann", "bob", "cy"][:n]})


@task(type="string")
def audit(book: pd.DataFrame) -> str:
    return ";".join(str(a) for a in book["amount"])


@flow("Frames")
def main(n: int = 4):
    df = frame(n)
    df["y"] = df["x"] * 2
    return total(df), tally(df), audit(ledger(3))


def parameters(data):
    return {"n": 4}
