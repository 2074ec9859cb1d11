"""Calls: every way a task receives arguments (varargs, keywords, futures beside literals) and finds its code."""

from oracle_runtime import flow, task

ORDER = list({"x", "y", "z", "w"})


def make_adder(step):
    def add(x):
        return x + step

    return add


ADD = make_adder(5)


@task(type="integer")
def base(k: int = 1) -> int:
    return k * 10


@task(type="integer")
def star(a: int, *rest: int) -> int:
    return a + sum(rest) * 2


@task(type="json")
def kw(a: int, **opts) -> dict:
    return {"a": a, **opts}


@task(type="integer")
def combine(parts: list) -> int:
    return sum(p if isinstance(p, int) else len(p) for p in parts)


@task(type="integer")
def pick(xs: list, f=min) -> int:
    return f(xs)


@task(type="integer")
def dynamic(x: int) -> int:
    from . import ops

    return ops.double(x) + ops.OFFSET


@task(type="integer")
def shifted(x: int) -> int:
    return ADD(x)


@task(type="string")
def ordered(n: int = 3) -> str:
    return ",".join(sorted(ORDER)[:n])


@flow("Calls")
def main(k: int = 1):
    b = base.submit(k)
    return (
        star(1, 2, 3),
        kw(1, mode="fast", level=2),
        combine([b, 1, "ab"]),
        pick([3, 1, 2]),
        dynamic(4),
        shifted(2),
        ordered(),
    )


def parameters(data):
    return {"k": 1}
