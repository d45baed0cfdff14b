"""Cron schedules: fields, names, steps, macros, cron's either-day rule, time zones, the ticks
before and after a moment, and clear errors; the CRD's pattern takes what the parser takes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from vortex_kube.cron import Schedule, zone

ROOT = Path(__file__).resolve().parents[3]
SPEC = yaml.safe_load((ROOT / "crds" / "vortexfunction.yaml").read_text())["spec"]["versions"][0][
    "schema"
]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "moment", "after", "before"),
    [
        (
            "* * * * *",
            at(2026, 12, 7, 10, 30, 15),
            at(2026, 12, 7, 10, 31),
            at(2026, 12, 7, 10, 30),
        ),
        ("* * * * *", at(2026, 12, 7, 10, 30), at(2026, 12, 7, 10, 31), at(2026, 12, 7, 10, 30)),
        (
            "*/15 9-17 * * mon-fri",
            at(2026, 12, 5, 12, 7),
            at(2026, 12, 7, 9),
            at(2026, 12, 4, 17, 45),
        ),
        ("0 0 1 jan *", at(2026, 6, 1), at(2027, 1, 1), at(2026, 1, 1)),
        ("@hourly", at(2026, 1, 1, 10), at(2026, 1, 1, 11), at(2026, 1, 1, 10)),
        ("@weekly", at(2026, 12, 9), at(2026, 12, 13), at(2026, 12, 6)),
        ("0 12 * * 7", at(2026, 12, 7), at(2026, 12, 13, 12), at(2026, 12, 6, 12)),  # 7 is Sunday
        # both day fields restricted: the 13th or a Friday
        ("0 0 13 * fri", at(2026, 12, 5), at(2026, 12, 11), at(2026, 12, 4)),
        (
            "5,10-12/2 * * * *",
            at(2026, 1, 1, 0, 10, 30),
            at(2026, 1, 1, 0, 12),
            at(2026, 1, 1, 0, 10),
        ),
        ("0 0 29 2 *", at(2026, 3, 1), at(2028, 2, 29), at(2024, 2, 29)),
    ],
)
def test_ticks_after_and_before(
    text: str, moment: datetime, after: datetime, before: datetime
) -> None:
    schedule = Schedule.parse(text)
    assert schedule.next_after(moment) == after
    assert schedule.previous(moment) == before
    assert re.fullmatch(SPEC["schedule"]["pattern"], text)


def test_time_zones_keep_wall_clock_time() -> None:
    paris = zone("Europe/Paris")
    schedule = Schedule.parse("0 9 * * *")
    winter = schedule.next_after(datetime(2026, 12, 7, 12, tzinfo=paris))
    assert winter is not None
    assert winter.astimezone(UTC) == at(2026, 12, 8, 8)
    summer = schedule.next_after(datetime(2026, 7, 7, 12, tzinfo=paris))
    assert summer is not None
    assert summer.astimezone(UTC) == at(2026, 7, 8, 7)
    assert zone(None) is UTC
    with pytest.raises(ValueError, match="not a known IANA time zone"):
        zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * *", "must have five fields"),
        ("61 * * * *", "'61' is not a minute"),
        ("* 24 * * *", "'24' is not a hour"),
        ("* * * foo *", "'foo' is not a month"),
        ("*/0 * * * *", "the step in '\\*/0' must be at least 1"),
        ("5-1 * * * *", "the range '5-1' runs backwards"),
        ("0 0 30 2 *", "never fires"),
        ("@often", "must have five fields"),
        ("* " * 60, "at most 100 characters"),
    ],
)
def test_bad_schedules_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schedule.parse(text)
