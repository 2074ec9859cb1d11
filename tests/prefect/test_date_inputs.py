"""``datetime.date`` (and datetime, time, timedelta) values are scout task inputs (issue 25 item 4): the signature
holds them by type and exact value; the job name digests them as Ruby digests the String a Ruby task receives
(``2026-03-04``), so the suffix matches the job Ruby runs for ``--when 2026-03-04``."""

from __future__ import annotations

import datetime
import json

from prefect import flow

from prefect_scout import scout_task
from scout_persist import digest_str
from scout_persist.signature import value_digest as signature_of_value

calls: list[str] = []


@scout_task(type="string")
def report(when: datetime.date, every: datetime.timedelta = datetime.timedelta(days=1)) -> str:
    calls.append(f"{when}/{every}")
    return f"report of {when} every {every.total_seconds():g}s"


@flow(name="Dated")
def dated(when: datetime.date, every: datetime.timedelta = datetime.timedelta(days=1)):
    return report(when, every)


def _jobs(root) -> list[str]:
    return sorted(p.name for p in (root / "var/jobs/Dated/report").iterdir() if p.suffix == ".info")


def test_a_date_input_is_cached_by_its_exact_value(scout_root):
    calls.clear()
    day = datetime.date(2026, 3, 4)
    assert dated(day) == "report of 2026-03-04 every 86400s"
    assert dated(day) == "report of 2026-03-04 every 86400s"
    assert calls == ["2026-03-04/1 day, 0:00:00"]  # the second run was a hit
    (first,) = _jobs(scout_root)
    assert dated(datetime.date(2026, 3, 5)) == "report of 2026-03-05 every 86400s"
    assert dated(day, datetime.timedelta(hours=6)) == "report of 2026-03-04 every 21600s"
    assert len(calls) == 3 and len(_jobs(scout_root)) == 3
    info = json.loads((scout_root / "var/jobs/Dated/report" / first).read_text())
    assert info["status"] == "done"


def test_a_date_names_the_job_a_ruby_string_would_but_never_serves_it(scout_root):
    calls.clear()

    @flow(name="Dated")
    def by_text(when: str):
        return report(when)

    assert dated(datetime.date(2026, 3, 4)) == "report of 2026-03-04 every 86400s"
    (job,) = _jobs(scout_root)
    assert by_text("2026-03-04") == "report of 2026-03-04 every 86400s"
    assert _jobs(scout_root) == [job]  # the same Scout job name: Ruby's digest of the String "2026-03-04"
    assert len(calls) == 2  # but another signature: recomputed, not served the date's result


def test_ruby_digests_dates_as_the_string_a_ruby_task_receives():
    assert digest_str(datetime.date(2026, 3, 4)) == digest_str("2026-03-04") == "2026-03-04"
    assert digest_str(datetime.datetime(2026, 3, 4, 10, 30)) == "2026-03-04T10:30:00"
    assert digest_str(datetime.timedelta(minutes=1, seconds=30)) == "90"
    assert digest_str([datetime.time(7, 5)]) == "[07:05:00]"


def test_the_signature_tells_a_date_from_its_string_and_zones_apart():
    day = datetime.date(2026, 3, 4)
    assert signature_of_value(day) != signature_of_value("2026-03-04")
    assert signature_of_value(day) == signature_of_value(datetime.date(2026, 3, 4))
    naive = datetime.datetime(2026, 3, 4, 12)
    utc = naive.replace(tzinfo=datetime.timezone.utc)
    assert len({signature_of_value(v) for v in (day, naive, utc, naive.replace(microsecond=1))}) == 4
    assert signature_of_value(datetime.timedelta(hours=1)) != signature_of_value(datetime.timedelta(seconds=3601))
