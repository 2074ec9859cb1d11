"""Probe: a task that reports everything a computation can observe of its input."""

from oracle_inputs import describe
from oracle_runtime import flow, task


@task(type="json")
def probe(x) -> list:
    return describe(x)


@flow("Probe")
def main(x=None):
    return probe(x)


def parameters(data):
    return {"x": [1, 2.5, "three"]}
