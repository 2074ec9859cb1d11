"""One attempt to get a job's value: observe its ``.info`` once, the verdict, take the lease, commit or fail.

The Prefect plug-in keeps one per task run (each Prefect door calls one method); any caller computing a job with
exactly-once can use it the same way::

    attempt = Attempt(store, key, signature, setup=JobSetup("W", "task", "json"))
    if attempt.acquire(timeout=60):
        try:
            verdict = attempt.verdict()  # the hit rule (scout_persist.verdict)
            value = verdict.value if isinstance(verdict, Served) else attempt.commit(compute())
        finally:
            attempt.release()

Leases follow the store's capability (:mod:`scout_persist.lease`): where writes can be conditional the job's ``.info``
is the lease, and taking it *is* writing ``start`` conditionally on the version observed (for a job this process
expects to be new, :mod:`scout_persist.presence`, nothing is observed first: the create is the lookup, and a refused
one hands back the ``.info`` the store read); elsewhere it is Ruby's job lock file, taken before the job is read for
the verdict, and ``start`` follows when the run computes.  A job whose ``.info`` alone says it serves is granted
without a lease (a pass: that one ``.info`` read is the verdict's; on local disks only for jobs carrying a signature,
Ruby's own are judged under their lock); when its bytes then fail, the verdict takes the lease and looks again.
Every write of a holder is fenced: a holder that was taken over cannot commit over the newer one.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import presence
from .errors import InvalidInputError, KeyNotFound, LockTimeout
from .handover import SETTLED, settle_handover
from .info import loads_info
from .job import READ_AT_SETUP, Job, JobWriter
from .lease import InfoLease, JobLease, LockFileLease, job_lease, wait_until
from .payload import PICKLE, info_type, is_pickled
from .signature import dependency_token, stored_signature
from .store import Conflict, Store

# an attempt takes an Expiry and gives verdicts: their vocabulary comes with it (callers ask the attempt, not the rule)
from .verdict import ABSENT, CLAIMED, CORRUPT, PREFECT_KEY, UNTRUSTED, Expiry, Miss, Served, Verdict, judge, quick_miss

POLL = 0.25  # seconds between looks at a job another live holder computes


@dataclass(frozen=True)
class JobSetup:
    """What a job's ``start`` records (Ruby's setup keys): its workflow and task, its declared ``type`` (None: any
    Python value, pickled), its own inputs and the job keys of its direct dependencies, in order."""

    workflow: str
    task: str
    type: str | None = None
    inputs: Sequence[Any] = ()
    input_names: Sequence[str] = ()
    provided_inputs: Mapping[str, Any] = field(default_factory=dict)
    non_default_inputs: Sequence[str] = ()
    dependencies: Sequence[str] = ()


class Attempt:
    """One attempt to get the value of job ``key`` of ``store``.

    ``signature``: what the stored job must have been computed with (None: Ruby's rules, no signature compared);
    ``expiration``: the task's ``cache_expiration`` (a :class:`datetime.timedelta`, counted from the job's end) or an
    :class:`~scout_persist.verdict.Expiry`; ``setup``: what ``start`` records (needed only to compute the job).
    """

    def __init__(
        self,
        store: Store,
        key: str,
        signature: Mapping[str, Any] | None = None,
        expiration: _dt.timedelta | Expiry = Expiry.RECORDED,
        *,
        setup: JobSetup | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.signature = signature
        self.expiration = expiration
        self.setup = setup
        self.lease: JobLease | None = None
        self.writer: JobWriter | None = None  # from `start` to the end of the computation
        self.passed = False  # granted without a lease: the .info said the job serves
        self.committed = False
        self.token: str | None = None  # how dependents see the job once served or committed
        self.changed: list[str] = []  # what changed since the stored job was computed (signature parts, expired)
        self._observed = False
        self._raw: bytes | None = None
        self._info: dict[str, Any] | None = None
        self._verdict: Verdict | None = None
        self._no_pass = False  # a pass proved wrong: from now on the lease is taken
        self._lease_args: tuple[float, float, float | None] = (30.0, 2.0, None)  # lease, refresh, acquire timeout

    def __repr__(self) -> str:
        return f"Attempt({self.store.url!r}, {self.key!r})"

    @property
    def info_key(self) -> str:
        return self.key + ".info"

    # -- observing -----------------------------------------------------------------------------------------
    def observe(self) -> dict[str, Any] | None:
        """The job's ``.info`` (None: no job), read once per attempt and kept for the verdict and the writer."""
        if not self._observed:
            try:
                raw: bytes | None = self.store.get(self.info_key)
            except KeyNotFound:
                raw = None
            self._keep(raw, None if raw is None else loads_info(raw, self.store.where(self.info_key)))
        return self._info

    def forget(self) -> None:
        """Drop what was observed and judged (the job is read again when asked)."""
        self._observed, self._raw, self._info, self._verdict = False, None, None, None

    def _keep(self, raw: bytes | None, info: dict[str, Any] | None) -> None:
        self._observed, self._raw, self._info, self._verdict = True, raw, info, None

    # -- the verdict ---------------------------------------------------------------------------------------
    def verdict(self, *, decode: bool = True) -> Verdict:
        """THE hit rule (:func:`scout_persist.verdict.judge`) on the observed job: :class:`Served` or :class:`Miss`.

        Kept for the attempt (Prefect's ``exists()`` and ``read()`` see one verdict); ``decode=False`` checks the
        bytes without building the value (not kept).  After a pass that proves wrong, the lease is taken and the job
        looked at again (LockTimeout when the lease cannot be had in time)."""
        if self.writer is not None:
            return Miss((CLAIMED,), "this attempt is computing it", status="start")
        if self._verdict is not None:
            return self._verdict
        verdict = self._judge(decode)
        if isinstance(verdict, Miss) and self.passed:
            # granted without a lease because the .info said done, yet it cannot serve (damaged, replaced): take
            # the lease now, then look again (another holder may have fixed it meanwhile)
            self._retake()
            return self.verdict(decode=decode)
        if decode:
            self._verdict = verdict
        return verdict

    def serve(self) -> Verdict:
        """The verdict, handed over once: when it serves, the attempt lets go of the value (a later verdict reads
        the job again)."""
        verdict = self.verdict()
        if isinstance(verdict, Served):
            self.forget()
        return verdict

    def _judge(self, decode: bool) -> Verdict:
        verdict = judge(
            self.store,
            self.key,
            self.observe(),
            signature=self.signature,
            expiration=self.expiration,
            decode=decode,
            relocate=Job.at(self.store, self.key).relocate,
            holding_lock=isinstance(self.lease, LockFileLease) and self.lease.held,
        )
        if isinstance(verdict, Served):
            self.token = verdict.token
        elif verdict.changed:
            self.changed = verdict.changed
        return verdict

    def _may_serve(self, info: dict[str, Any] | None) -> bool:
        """Whether the ``.info`` alone says the job serves (nothing else read)."""
        miss = quick_miss(self.store, self.key, info, self.signature, self.expiration, describe=False)
        if miss is not None and miss.changed:
            self.changed = miss.changed
        return miss is None

    # -- the lease -----------------------------------------------------------------------------------------
    def acquire(self, *, lease: float = 30.0, refresh: float = 2.0, timeout: float | None = None) -> bool:
        """Make the attempt safe to judge and compute: a pass (the job serves, no lease), or the lease taken by the
        store's capability (where ``.info`` is the lease this writes ``start``).  False when another live holder
        keeps it past ``timeout`` seconds (None: wait)."""
        if self.lease is not None and self.lease.held:
            return True
        self._lease_args = (lease, refresh, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.store.conditional_writes and not self._no_pass:
            info = self.observe()
            if info is not None and stored_signature(info) is not None and self._may_serve(info):
                self.passed = True
                return True
        taken = job_lease(self.store, self.key, lease=lease, refresh=refresh)
        if isinstance(taken, InfoLease):
            return self._take_info(taken, deadline)
        assert isinstance(taken, LockFileLease)  # job_lease gives one of the two kinds
        if not taken.acquire(timeout=None if deadline is None else max(0.0, deadline - time.monotonic())):
            return False
        self.forget()
        info = self.observe()  # judged again under the lock: this one read serves the handover and the verdict
        handover = settle_handover(taken, info=info, read=False)  # a Ruby holder may still owe its .info 'done'
        if handover.outcome != SETTLED or handover.waited:
            self.forget()  # the .info changed (or may have) while the handover was settled: read it again
        self.lease = taken
        return True

    def _take_info(self, lease: InfoLease, deadline: float | None) -> bool:
        """Observe the ``.info`` through the lease: it serves -> a pass; a live run holds it -> wait; else take it by
        writing ``start`` conditionally on what was observed (another taker first -> observe again).

        A job this process expects to be new (:mod:`scout_persist.presence`) is not read first: the create of its
        ``start`` (``If-None-Match: *``) is the lookup, and a refused create hands back what the store read."""
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        creating = self.setup is not None and not presence.expected(self.store.url, self.key, wait=left)
        info = None if creating else self._observe_through(lease)
        while True:
            if not self._no_pass and info is not None and self._may_serve(info):
                self.passed = True
                return True
            if lease.busy_reason(info) is not None:
                if not wait_until(deadline, POLL):
                    return False
                info = self._observe_through(lease)
                continue
            try:
                self._start(lease, lease.seen.data if lease.seen else None)  # the conditional write: the acquisition
            except Conflict as exc:
                info = self._observe_through(lease, exc)  # there is a job (another taker may have been first)
                continue
            if creating and lease.seen is None:
                presence.looked(self.store.url, self.key, found=False)  # the create was the lookup: a new job
                self._keep(None, None)
            presence.wrote(self.store.url, self.key)
            return True

    def _observe_through(self, lease: InfoLease, refused: Conflict | None = None) -> dict[str, Any] | None:
        """The ``.info`` read through the lease (or as the store read it back when it ``refused`` the acquisition)."""
        info = lease.observe(refused)
        self._keep(lease.seen.data if lease.seen else None, info)
        presence.looked(self.store.url, self.key, found=lease.seen is not None)
        return info

    def _retake(self) -> None:
        self.passed, self._no_pass = False, True
        self.forget()
        lease, refresh, timeout = self._lease_args
        if not self.acquire(lease=lease, refresh=refresh, timeout=timeout):
            raise LockTimeout(
                f"the lease of job {self.store.where(self.key)!r} was not acquired within {timeout}s: another run "
                "holds it; raise the acquire timeout or stop that run"
            )

    @property
    def held(self) -> bool:
        """Whether this attempt may go on: granted by a pass, or its lease still stands."""
        return self.passed or (self.lease is not None and self.lease.held)

    def release(self) -> None:
        """Let go of the lease (a job left ``start`` where ``.info`` is the lease becomes ``aborted``)."""
        lease, self.lease, self.passed = self.lease, None, False
        if lease is not None:
            lease.release()

    # -- computing -----------------------------------------------------------------------------------------
    def claim(self) -> JobWriter:
        """Start computing the job: its lease (taken now when the attempt holds none, e.g. after a pass), then its
        ``.info`` reset to Ruby's setup keys with status ``start`` in one write; the writer of the computation."""
        if self.writer is not None:
            return self.writer
        if self.lease is None:  # (a lease that was lost stays: its writes are refused)
            self._retake()
            if self.writer is not None:  # where .info is the lease, taking it wrote `start`
                return self.writer
        self._start(self.lease, self._raw if self._observed else READ_AT_SETUP)
        assert self.writer is not None  # _start set it
        return self.writer

    def _start(self, lease: JobLease | None, previous: Any) -> None:
        setup = self.setup
        if setup is None:
            raise InvalidInputError(
                f"job {self.store.where(self.key)!r}: an attempt computes a job only with its JobSetup "
                "(workflow, task, type, inputs); pass Attempt(..., setup=JobSetup(...))"
            )
        writer = JobWriter(
            self.store,
            self.key,
            workflow=setup.workflow,
            task=setup.task,
            type=info_type(setup.type),
            previous_info=previous,
            lease=lease,
        )
        writer.begin(
            inputs=list(setup.inputs),
            input_names=list(setup.input_names),
            provided_inputs=dict(setup.provided_inputs),
            non_default_inputs=list(setup.non_default_inputs),
            dependencies=list(setup.dependencies),
        )
        self.lease, self.writer, self._verdict = lease, writer, None

    def commit(self, value: Any, *, format: str | None = None, **done: Any) -> Any:
        """Store ``value`` (after the round-trip contract of :mod:`scout_persist.payload`) and commit the job
        (``done`` with the signature and ``done`` keys); returns the value a cache hit would return.  On any failure
        the job gets ``error`` (or keeps its committed predecessor) and the error is raised."""
        writer = self.claim()
        declared = self.setup.type if self.setup is not None else None
        try:
            writer.save(value, PICKLE if is_pickled(declared) else declared, format=format)
            if self.signature is not None:
                done = {"signature": self.signature, **done}
            writer.done(**done)
        except BaseException as exc:
            writer.error(exc)
            self._end()
            raise
        self.committed = True
        self.token = dependency_token(self.key, writer.info.data, self.store)
        handed = writer.value
        self._end()
        return handed

    def fail(self, exc: BaseException) -> None:
        """The computation raised: ``.info`` gets ``error`` (class, message, backtrace); the result file goes."""
        if self.writer is not None:
            self.writer.error(exc)
        self._end()

    def _end(self) -> None:
        self.writer, self.setup = None, None
        self.forget()


__all__ = [
    "ABSENT",
    "CLAIMED",
    "CORRUPT",
    "PREFECT_KEY",
    "UNTRUSTED",
    "Attempt",
    "Expiry",
    "JobSetup",
    "Miss",
    "Served",
    "Verdict",
]
