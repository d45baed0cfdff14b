"""Versions of a function and the traffic split between them: one definition for every backend.

A version is immutable: a number (1, 2, ...), the code's sha-256, the execution spec it runs with
(`EXECUTION_FIELDS` of the VortexFunction spec, camelCase, defaults applied), when it was made and
by whom. `History.record` makes a new version when the code or an execution field changed and
keeps the last `revisionHistoryLimit` of them, never dropping one the traffic names. `Traffic` is
`spec.traffic`: weights by version (or the latest), with optional tags that pin a request to
one version (`X-Vortex-Version: canary`, or a number).

Pure, no I/O. Callers: the API's local backend (its function records) and routes (`/versions`,
`/rollback`, `/traffic`), and `vortex_api.traffic`, which splits executions by these weights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# What makes a new version when it changes, besides the code (capacity such as replicas,
# concurrency or scale, and async settings such as retry or schedule, do not).
EXECUTION_FIELDS = ("timeoutMs", "memoryMb", "cpuLimitMs", "env", "egress", "kv", "isolation")
DEFAULT_HISTORY_LIMIT, MIN_HISTORY_LIMIT, MAX_HISTORY_LIMIT = 10, 1, 100
MAX_TRAFFIC_TARGETS = 10
TOTAL_PERCENT = 100
# The request header that pins a version (a tag or a number), and the response header that says
# which version ran (its number).
VERSION_HEADER = "X-Vortex-Version"
# A tag is a DNS label that is not a number (a number pins by version number).
TAG_PATTERN = r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$"
_TAG = re.compile(TAG_PATTERN)


class VersionError(ValueError):
    """A traffic split or version reference that cannot be applied; the message says why."""


@dataclass(frozen=True)
class Version:
    """One immutable version of a function."""

    number: int
    code_sha256: str
    spec: Mapping[str, Any]  # EXECUTION_FIELDS present in the spec, camelCase
    created_at: str  # RFC 3339
    created_by: str | None = None
    rollback_of: int | None = None  # the version whose code and spec it took, for a rollback

    def same_as(self, code_sha256: str, spec: Mapping[str, Any]) -> bool:
        """Whether code and execution spec are this version's (then no new version is made)."""
        return self.code_sha256 == code_sha256 and dict(self.spec) == dict(spec)

    def to_json(self) -> dict[str, Any]:
        """As `status.versions[]` and the local records keep it (camelCase)."""
        out: dict[str, Any] = {
            "version": self.number,
            "codeSha256": self.code_sha256,
            "spec": dict(self.spec),
            "createdAt": self.created_at,
        }
        if self.created_by:
            out["createdBy"] = self.created_by
        if self.rollback_of is not None:
            out["rollbackOf"] = self.rollback_of
        return out

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Version:
        return cls(
            number=int(value["version"]),
            code_sha256=str(value["codeSha256"]),
            spec=dict(value.get("spec") or {}),
            created_at=str(value.get("createdAt") or ""),
            created_by=value.get("createdBy") or None,
            rollback_of=(int(value["rollbackOf"]) if value.get("rollbackOf") is not None else None),
        )


def execution_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a VortexFunction spec that make a version (absent and null ones left out)."""
    return {k: spec[k] for k in EXECUTION_FIELDS if spec.get(k) is not None}


@dataclass(frozen=True)
class Target:
    """One entry of `spec.traffic`: `percent` of executions go to `version` (or the latest)."""

    percent: int
    version: int | None = None
    latest: bool = False
    tag: str | None = None

    def number(self, latest: int) -> int:
        """The version this target sends to, given the latest version's number."""
        return latest if self.latest or self.version is None else self.version

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"latest": True} if self.latest else {"version": self.version}
        out["percent"] = self.percent
        if self.tag:
            out["tag"] = self.tag
        return out


@dataclass(frozen=True)
class Traffic:
    """`spec.traffic`: empty means the latest version takes every execution."""

    targets: tuple[Target, ...] = ()

    @classmethod
    def parse(cls, value: object) -> Traffic:
        """From `spec.traffic` as given (a list of `{version | latest, percent, tag?}`); raise
        VersionError saying what is wrong with it. Whether the versions exist is `check`'s."""
        if value is None:
            return cls()
        if not isinstance(value, list):
            raise VersionError("traffic must be a list of {version or latest, percent, tag}")
        if len(value) > MAX_TRAFFIC_TARGETS:
            raise VersionError(f"traffic takes at most {MAX_TRAFFIC_TARGETS} entries")
        targets = []
        for i, entry in enumerate(value):
            where = f"traffic[{i}]"
            if not isinstance(entry, dict):
                raise VersionError(f"{where} must be an object")
            unknown = set(entry) - {"version", "latest", "percent", "tag"}
            if unknown:
                raise VersionError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
            version, latest = entry.get("version"), entry.get("latest", False)
            if latest not in (True, False):
                raise VersionError(f"{where}.latest must be true or false")
            if (version is None) == (latest is False):
                raise VersionError(f"{where} needs either version or latest: true (one of them)")
            if version is not None and (
                isinstance(version, bool) or not isinstance(version, int) or version < 1
            ):
                raise VersionError(f"{where}.version must be a version number (1 or more)")
            percent = entry.get("percent")
            if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
                raise VersionError(f"{where}.percent must be an integer from 0 to 100")
            tag = entry.get("tag")
            if tag is not None and (not isinstance(tag, str) or not _TAG.match(tag)):
                raise VersionError(
                    f"{where}.tag must be a lower-case DNS label starting with a letter"
                )
            targets.append(Target(percent=percent, version=version, latest=latest, tag=tag))
        total = sum(t.percent for t in targets)
        if targets and total != TOTAL_PERCENT:
            raise VersionError(f"traffic percents sum to {total}, not {TOTAL_PERCENT}")
        tags = [t.tag for t in targets if t.tag]
        if len(tags) != len(set(tags)):
            raise VersionError("traffic tags must be unique")
        return cls(tuple(targets))

    def check(self, kept: Iterable[int]) -> None:
        """Raise VersionError if a target names a version that is not kept."""
        numbers = set(kept)
        for target in self.targets:
            if target.version is not None and target.version not in numbers:
                raise VersionError(
                    f"traffic names version {target.version}, which does not exist"
                    f" (kept: {', '.join(map(str, sorted(numbers))) or 'none'})"
                )

    def used(self, latest: int) -> set[int]:
        """The versions this split can send executions to (a tag reaches its version at 0%)."""
        if not self.targets:
            return {latest}
        return {t.number(latest) for t in self.targets}

    def weights(self, latest: int) -> list[tuple[int, int]]:
        """(version, percent) with percent > 0, the same version summed; all to the latest if
        the split is empty."""
        if not self.targets:
            return [(latest, TOTAL_PERCENT)]
        summed: dict[int, int] = {}
        for target in self.targets:
            if target.percent:
                n = target.number(latest)
                summed[n] = summed.get(n, 0) + target.percent
        return sorted(summed.items())

    def tagged(self, tag: str, latest: int) -> int | None:
        """The version a tag pins, or None if no target has that tag."""
        for target in self.targets:
            if target.tag == tag:
                return target.number(latest)
        return None

    def to_json(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in self.targets]


@dataclass(frozen=True)
class History:
    """The versions kept of one function, oldest first, and how many to keep."""

    versions: tuple[Version, ...] = ()
    limit: int = DEFAULT_HISTORY_LIMIT

    @property
    def latest(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    def get(self, number: int) -> Version | None:
        for version in self.versions:
            if version.number == number:
                return version
        return None

    def numbers(self) -> list[int]:
        return [v.number for v in self.versions]

    def record(
        self,
        code_sha256: str,
        spec: Mapping[str, Any],
        created_at: str,
        traffic: Traffic,
        *,
        created_by: str | None = None,
        rollback_of: int | None = None,
        limit: int | None = None,
    ) -> History:
        """The history after a change to this code and execution spec: a new version if they
        differ from the latest's (always for a rollback), pruned to the limit."""
        latest = self.latest
        limit = self.limit if limit is None else limit
        if latest is not None and rollback_of is None and latest.same_as(code_sha256, spec):
            return History(self.versions, limit).pruned(traffic)
        version = Version(
            number=(latest.number + 1) if latest else 1,
            code_sha256=code_sha256,
            spec=dict(spec),
            created_at=created_at,
            created_by=created_by,
            rollback_of=rollback_of,
        )
        return History((*self.versions, version), limit).pruned(traffic)

    def pruned(self, traffic: Traffic) -> History:
        """Only the newest `limit` versions, plus any older one the traffic still uses."""
        if not self.versions:
            return self
        used = traffic.used(self.versions[-1].number)
        newest = {v.number for v in self.versions[-self.limit :]}
        kept = tuple(v for v in self.versions if v.number in newest or v.number in used)
        return History(kept, self.limit)

    def code_in_use(self) -> set[str]:
        """The code hashes of every kept version (their code objects stay)."""
        return {v.code_sha256 for v in self.versions}

    def to_json(self) -> list[dict[str, Any]]:
        return [v.to_json() for v in self.versions]

    @classmethod
    def from_json(cls, value: object, limit: int = DEFAULT_HISTORY_LIMIT) -> History:
        entries = value if isinstance(value, list) else []
        versions = [Version.from_json(v) for v in entries if isinstance(v, dict)]
        return cls(tuple(sorted(versions, key=lambda v: v.number)), limit)


@dataclass(frozen=True)
class Pin:
    """What a request's X-Vortex-Version header asks for: a tag or a version number."""

    tag: str | None = None
    number: int | None = None
    given: str = field(default="", compare=False)

    @classmethod
    def parse(cls, header: str | None) -> Pin | None:
        """None for no header; raise VersionError for a value that is neither."""
        if header is None:
            return None
        value = header.strip()
        if value.isdigit() and len(value) <= 9 and int(value) > 0:
            return cls(number=int(value), given=value)
        if _TAG.match(value):
            return cls(tag=value, given=value)
        raise VersionError(f"{VERSION_HEADER} must be a version number or a tag, not {value!r}")
