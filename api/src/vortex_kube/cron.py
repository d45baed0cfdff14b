"""Five-field cron schedules, as Vixie cron and the Kubernetes CronJob read them.

`minute hour day-of-month month day-of-week`: each field `*`, a number, a range `a-b`, a list
`a,b`, a step `*/n` or `a-b/n`; months and days also by name (`jan`, `mon`), day-of-week 0 or 7
for Sunday; and the macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
(`@midnight`) and `@hourly`. When both day fields are restricted, a day matching either one
matches (cron's rule). Times are wall-clock times of a time zone (`zoneinfo`, default UTC).

Pure (stdlib only): the API checks `spec.schedule` at `/deploy` with `Schedule.parse` and its
scheduler asks `previous` and `next_after` for ticks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# name, low, high, names
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_PART = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")
MAX_SCHEDULE_CHARS = 100
# A schedule that matches no day within this many years (`0 0 30 2 *`) is refused.
_HORIZON_DAYS = 366 * 5


def zone(name: str | None) -> tzinfo:
    """The time zone named (IANA, `Europe/Paris`), UTC when None; ValueError if unknown."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"timeZone {name!r} is not a known IANA time zone") from exc


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    def number(token: str) -> int:
        value = names.get(token) if not token.isdigit() else int(token)
        if value is None or not low <= value <= high:
            raise ValueError(f"schedule: {token!r} is not a {name} ({low} to {high})")
        return value

    out: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part)
        if match is None:
            raise ValueError(f"schedule: {part!r} is not a {name} field")
        span, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"schedule: the step in {part!r} must be at least 1")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = number(a), number(b)
            if first > last:
                raise ValueError(f"schedule: the range {span!r} runs backwards")
        else:
            first = number(span)
            last = high if step_text else first
        out.update(range(first, last + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; `text` is as given."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    any_day: bool  # day of month was `*`
    any_weekday: bool  # day of week was `*`

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse `text`; ValueError says what is wrong."""
        if not isinstance(text, str) or len(text) > MAX_SCHEDULE_CHARS:
            raise ValueError(
                f"schedule must be a cron expression of at most {MAX_SCHEDULE_CHARS} characters"
            )
        lowered = text.strip().lower()
        fields = _MACROS.get(lowered, lowered).split()
        if len(fields) != 5:
            raise ValueError(
                f"schedule {text!r} must have five fields (minute hour day-of-month month"
                " day-of-week) or be a macro such as @hourly"
            )
        parsed = [_field(f, *spec) for f, spec in zip(fields, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in parsed[4])
        schedule = cls(
            text=text,
            minutes=parsed[0],
            hours=parsed[1],
            days=parsed[2],
            months=parsed[3],
            weekdays=weekdays,
            any_day=fields[2] == "*",
            any_weekday=fields[4] == "*",
        )
        if schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise ValueError(f"schedule {text!r} never fires")
        return schedule

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return in_week
        if self.any_weekday:
            return in_month
        return in_month or in_week  # both restricted: either one

    def _times(self, day: datetime, reverse: bool) -> list[datetime]:
        times = [
            day.replace(hour=h, minute=m) for h in sorted(self.hours) for m in sorted(self.minutes)
        ]
        return times[::-1] if reverse else times

    def next_after(self, moment: datetime) -> datetime | None:
        """The first tick strictly after `moment` (aware), in `moment`'s time zone."""
        wall = moment.replace(second=0, microsecond=0, tzinfo=None)
        day = wall.replace(hour=0, minute=0)
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                for tick in self._times(day, reverse=False):
                    if tick > wall:
                        return tick.replace(tzinfo=moment.tzinfo)
            day += timedelta(days=1)
        return None

    def previous(self, moment: datetime) -> datetime | None:
        """The last tick at or before `moment` (aware), in `moment`'s time zone."""
        wall = moment.replace(tzinfo=None)
        day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                for tick in self._times(day, reverse=True):
                    if tick <= wall:
                        return tick.replace(tzinfo=moment.tzinfo)
            day -= timedelta(days=1)
        return None
