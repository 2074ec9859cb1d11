"""A laboratory flow, the code a team deploys: each sample is loaded, calibrated and summarised, then one report.

Deployed from this folder as local source (``flow.from_source(<folder>, "measurements.py:measurements")``) and run
by process workers; the store is whatever ``$SCOUT_PERSIST_URL`` names in the worker's environment.

The flow writes what it returns to ``$TOPO_RESULTS/<flow run id>.json`` (when set), with the ``$TOPO_WORKER`` it ran
on: what each run was served, and where.
Every task body sleeps ``pause`` seconds (an ignored argument: it changes no job) and notes that it ran in the side
log (``bodies.note``); the tests count those lines.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from bodies import note
from prefect_scout import job_name, scout_task

UNITS = "mV"  # the report's units: the tests deploy a code change by editing this line


@scout_task(type="json", ignore=("pause",))
def load(sample: str, pause: float = 0.0) -> list[float]:
    """The sample's raw readings (derived from its name, as an instrument file would be read)."""
    note("load", sample, pause)
    seed = int(hashlib.sha256(sample.encode()).hexdigest()[:12], 16)
    return [((seed >> (3 * i)) % 1000) / 10 for i in range(12)]


@scout_task(type="json", ignore=("pause",))
def calibrate(readings: list[float], sample: str, gain: float, pause: float = 0.0) -> list[float]:
    """Readings times the instrument's gain."""
    note("calibrate", f"{sample}@{gain:g}", pause)
    return [round(r * gain, 6) for r in readings]


@scout_task(type="json", ignore=("pause",))
def summarise(calibrated: list[float], sample: str, gain: float, pause: float = 0.0) -> dict[str, float]:
    note("summarise", f"{sample}@{gain:g}", pause)
    return {"min": min(calibrated), "max": max(calibrated), "mean": round(sum(calibrated) / len(calibrated), 6)}


@scout_task(type="json", ignore=("pause",))
def report(summaries: list[dict[str, float]], samples: list[str], gain: float, pause: float = 0.0) -> dict:
    note("report", f"{'+'.join(samples)}@{gain:g}", pause)
    return {"samples": samples, "gain": gain, "highest": max(s["max"] for s in summaries), "units": UNITS}


@flow(name="Measurements", task_runner=ThreadPoolTaskRunner(max_workers=4))
def measurements(samples: list[str], gain: float = 1.0, pause: float = 0.0) -> dict:
    """Summaries of ``samples`` calibrated with ``gain``, and their report."""
    summaries = {}
    for sample in samples:
        with job_name(sample):
            readings = load.submit(sample, pause=pause)
            calibrated = calibrate.submit(readings, sample, gain, pause=pause)
            summaries[sample] = summarise.submit(calibrated, sample, gain, pause=pause)
    with job_name("report"):
        final = report.submit([summaries[s] for s in samples], samples, gain, pause=pause)
    out = {"summaries": {s: f.result() for s, f in summaries.items()}, "report": final.result()}
    results = os.environ.get("TOPO_RESULTS")
    if results:
        from prefect.runtime import flow_run

        with open(os.path.join(results, f"{flow_run.id}.json"), "w", encoding="utf-8") as fh:
            json.dump({"worker": os.environ.get("TOPO_WORKER"), "value": out}, fh)
    return out


def expected(samples: list[str], gain: float = 1.0) -> dict:
    """What a run computes, by the task bodies alone (no Prefect, no store; call it where $TOPO_BODY_LOG is unset)."""
    body = {t.name: inspect.unwrap(t.fn) for t in (load, calibrate, summarise, report)}
    summaries = {}
    for s in samples:
        summaries[s] = body["summarise"](body["calibrate"](body["load"](s), s, gain), s, gain)
    return {"summaries": summaries, "report": body["report"]([summaries[s] for s in samples], samples, gain)}
