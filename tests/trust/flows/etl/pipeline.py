"""Etl: load lines, count weighted words, score them, price the score."""

import functools
import operator
import statistics
from decimal import ROUND_HALF_UP, Decimal

from oracle_runtime import flow, task

from .helpers import text
from .helpers.text import weight

CURRENCY = Decimal("0.01")
SCALE = functools.partial(operator.mul, 3)
AGG = statistics.mean
LINES = ["The cat of the house", "a dog and a cat", "Birds of a feather"]


@task(type="array")
def load(n: int = 3) -> list:
    return LINES[:n]


@task(type="json")
def count(lines: list) -> dict:
    counts = {}
    for line in lines:
        for w in text.tokens(line):
            counts[w] = counts.get(w, 0) + weight(w)
    return counts


@task(type="float")
def score(counts: dict, factor: float = 1.5) -> float:
    return float(AGG([SCALE(v) for v in counts.values()]) * factor)


@task(type="string")
def price(total: float, places: int = 2) -> str:
    step = CURRENCY if places == 2 else Decimal(1).scaleb(-places)
    return str((Decimal(total) * step).quantize(step, rounding=ROUND_HALF_UP))


@flow("Etl")
def main(n: int = 3, factor: float = 1.5):
    lines = load(n)
    counts = count.submit(lines)
    total = score(counts, factor)
    return price(total)


def parameters(data):
    return {"n": 3, "factor": 1.5}
