"""How a benchmark hands the value it prepared before timing to the task it times, and knows the load was a hit.

A task's code identity covers the module data its body reads (rightly: editing that data must invalidate the
cache), so a value built before timing cannot sit in a module global the body returns: it would be one value in the
persist child and another in the load child, and the load would miss.  It travels instead as an argument every
system is told to ignore (``@scout_task(ignore=[IGNORED])``, Prefect's ``INPUTS - IGNORED``, joblib's
``ignore=[IGNORED]``, ``persist(fn=...)``, which keys by name only), and the body counts its calls in it, so the
load phase asserts it was a cache hit (:func:`assert_hit`) instead of timing a recompute.

The flow that calls the task reads the prepared value too, and the plug-in's run record digests the flow's code
identity, module data included: a flow reads it through :func:`handover`, a library object that identity counts by
its type only, so that the run record does not hash the prepared value (200 MiB in a persist child, None in a load
child), a cost of the harness's hand-over that the same flow without persistence never pays.
"""

from __future__ import annotations

import types

IGNORED = "prepared"  # the name of the ignored argument of :func:`produce`


class Prepared:
    """The prepared ``value`` (None in a load child) and how many times a task body handed it out (``calls``).

    A plain class on purpose: Prefect passes it to the task as it is (a dataclass would be copied field by field)."""

    def __init__(self, value: object = None) -> None:
        self.value = value
        self.calls = 0


def handover(prepared: Prepared) -> types.SimpleNamespace:
    """What a flow reads to hand ``prepared`` to its task (``handover(p).prepared``): a library object, which code
    identity does not open (the value inside is not module data of the flow's)."""
    return types.SimpleNamespace(prepared=prepared)


class CacheMissInLoad(RuntimeError):
    """A task body ran in a load phase, where nothing was prepared: the load missed the cache."""


def produce(size: int, prepared: Prepared):
    """The task body of every cached system: returns the prepared value, counting the call; in a load phase (no
    value prepared) it raises, so a miss fails the benchmark with this message rather than a confusing one later."""
    prepared.calls += 1
    if prepared.value is None:
        raise CacheMissInLoad(
            "the task body ran in a load phase: a cache miss, not a load (the persist and load children computed "
            "different cache keys)"
        )
    return prepared.value


def assert_hit(prepared: Prepared, what: str) -> None:
    """A load phase whose task body ran was a cache miss: fail the benchmark rather than time a recompute."""
    if prepared.calls:
        raise SystemExit(
            f"{what}: the load phase ran the task body {prepared.calls} time(s): a cache miss, not a load; "
            "the persist and load children must compute the same cache key (hand prepared values as an ignored "
            f"argument, {IGNORED!r}, never as module data the body reads)"
        )
