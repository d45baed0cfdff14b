"""How results reach the terminal: rich tables and plain lines for people, JSON for scripts.

The only module of the CLI that imports rich. Commands print through an `Output` made for the
`-o/--output` they were given (`commands/common.py`). Results go to stdout; the function's console
logs, progress and errors go to stderr, so `vortex invoke f | jq` sees only the output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vortex_cli.errors import ApiError, CliError

Format = Literal["text", "json"]
FORMATS: tuple[Format, ...] = ("text", "json")

# Off a terminal rich would wrap tables at 80 columns; a pipe gets whole lines instead.
_PIPE_WIDTH = 1000


def to_json(value: Any) -> str:
    """JSON as the CLI prints it: indented, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def log_line(entry: dict[str, Any]) -> str:
    """One console log entry of a function: `<timestamp> <level> <message>`."""
    return f"{entry.get('timestamp', '')} {entry.get('level', 'log')} {entry.get('message', '')}"


def to_json_line(value: Any) -> str:
    """JSON on one line, for a stream of documents (newline-delimited JSON)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def record_lines(record: dict[str, Any]) -> list[str]:
    """One invocation record in `vortex logs`: its line, then the function's console output."""
    status = record.get("status", "")
    if status == "error" and record.get("error_type"):
        status = str(record["error_type"])
    version = str(record.get("version") or "")[:12]
    head = (
        f"{record.get('started_at', '')}  {record.get('invocation_id', '')}  {status}  "
        f"{record.get('duration_ms', '')} ms  {version}"
    )
    return [head.rstrip(), *(f"  {log_line(entry)}" for entry in record.get("logs") or [])]


def function_row(info: dict[str, Any]) -> list[str]:
    """The columns of one function in `vortex list` (see `FUNCTION_COLUMNS`)."""
    spec = info.get("spec") or {}
    status = info.get("status") or {}
    sha = info.get("code_sha256") or ""
    return [
        str(info.get("function_id", "")),
        str(status.get("phase", "")),
        str(spec.get("isolation", "")),
        f"{spec.get('timeout_ms', '')} ms",
        f"{spec.get('memory_mb', '')} MB",
        sha[:12],
        str(info.get("created_at") or ""),
    ]


FUNCTION_COLUMNS = ("NAME", "STATUS", "ISOLATION", "TIMEOUT", "MEMORY", "CODE", "CREATED")


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return ""
    return f"{error.get('type', '')}: {error.get('message', '')}"


def invocation_fields(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of one async invocation in `vortex invocation`, in order."""
    fields = [
        ("id", str(doc.get("invocation_id", ""))),
        ("function", str(doc.get("function", ""))),
        ("status", str(doc.get("status", ""))),
        ("attempts", str(doc.get("attempts", ""))),
        ("created", str(doc.get("created_at") or "")),
    ]
    for key, label in (("next_attempt_at", "next attempt"), ("finished_at", "finished")):
        if doc.get(key):
            fields.append((label, str(doc[key])))
    if doc.get("redrives"):
        fields.append(("redrives", str(doc["redrives"])))
    result = doc.get("result")
    if isinstance(result, dict):
        fields.append(("output", to_json(result.get("output"))))
    if doc.get("error"):
        fields.append(("error", _error_text(doc["error"])))
    for attempt in doc.get("history") or []:
        ended = attempt.get("finished_at") or "running"
        outcome = _error_text(attempt.get("error")) or "ok"
        fields.append(
            (
                f"attempt {attempt.get('attempt')}",
                f"{attempt.get('started_at')} to {ended}: {outcome}",
            )
        )
    return fields


DEAD_LETTER_COLUMNS = ("ID", "ATTEMPTS", "FINISHED", "ERROR")


def dead_letter_row(doc: dict[str, Any]) -> list[str]:
    """The columns of one dead invocation in `vortex dead-letters`."""
    return [
        str(doc.get("invocation_id", "")),
        str(doc.get("attempts", "")),
        str(doc.get("finished_at") or ""),
        _error_text(doc.get("error")),
    ]


VERSION_COLUMNS = ("VERSION", "TRAFFIC", "CODE", "CREATED", "BY", "NOTE")


def _share(target: dict[str, Any]) -> str:
    tag = target.get("tag")
    return f"{target.get('percent', '')}%" + (f" {tag}" if tag else "")


def version_rows(doc: dict[str, Any]) -> list[list[str]]:
    """The rows of `vortex versions` (see `VERSION_COLUMNS`), oldest first: each kept version
    with its share of the traffic (`80%`, `20% canary`; the latest takes 100% of no split)."""
    latest = doc.get("latest_version")
    traffic = doc.get("traffic") or []
    shares: dict[Any, list[str]] = {} if traffic else {latest: ["100%"]}
    for target in traffic:
        number = latest if target.get("latest") else target.get("version")
        shares.setdefault(number, []).append(_share(target))
    rows = []
    for version in doc.get("versions") or []:
        number = version.get("version")
        rollback_of = version.get("rollback_of")
        rows.append(
            [
                str(number),
                ", ".join(shares.get(number, [])),
                str(version.get("code_sha256") or "")[:12],
                str(version.get("created_at") or ""),
                str(version.get("created_by") or ""),
                f"rollback of {rollback_of}" if rollback_of is not None else "",
            ]
        )
    return rows


def traffic_line(doc: dict[str, Any]) -> str:
    """A function's split on one line, as `vortex traffic` prints it: `fn: 1 80%, 3 20% (canary)`
    (`latest` for the entry that follows the latest version)."""
    parts = []
    for target in doc.get("traffic") or [{"latest": True, "percent": 100}]:
        where = "latest" if target.get("latest") else str(target.get("version", ""))
        tag = target.get("tag")
        parts.append(f"{where} {target.get('percent', '')}%" + (f" ({tag})" if tag else ""))
    return f"{doc.get('function_id', '')}: {', '.join(parts)}"


def function_fields(info: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of one function in `vortex get`, in order."""
    spec = info.get("spec") or {}
    status = info.get("status") or {}
    fields = [
        ("name", str(info.get("function_id", ""))),
        ("status", str(status.get("phase", ""))),
        ("ready", "yes" if status.get("ready") else "no"),
        ("isolation", str(spec.get("isolation", ""))),
        ("timeout", f"{spec.get('timeout_ms', '')} ms"),
        ("memory", f"{spec.get('memory_mb', '')} MB"),
    ]
    if spec.get("cpu_limit_ms") is not None:
        fields.append(("cpu limit", f"{spec['cpu_limit_ms']} ms"))
    for key in ("concurrency", "replicas"):
        if spec.get(key) is not None:
            fields.append((key, str(spec[key])))
    for key, label in (
        ("ready_replicas", "ready replicas"),
        ("desired_replicas", "desired replicas"),
        ("observed_concurrency", "in flight"),
    ):
        if status.get(key) is not None:
            fields.append(
                (label, f"{status[key]:g}" if key == "observed_concurrency" else str(status[key]))
            )
    scale = spec.get("scale")
    if scale:
        fields.append(
            (
                "autoscale",
                f"{scale.get('min_replicas')} to {scale.get('max_replicas')} pods,"
                f" target {scale.get('target_concurrency'):g} in flight per pod",
            )
        )
    for name, value in sorted((spec.get("env") or {}).items()):
        fields.append((f"env {name}", str(value)))
    fields.append(("code sha256", str(info.get("code_sha256") or "")))
    fields.append(("created", str(info.get("created_at") or "")))
    for condition in status.get("conditions") or []:
        reason = condition.get("reason") or ""
        message = condition.get("message") or ""
        fields.append((f"condition {condition.get('type', '')}", f"{reason} {message}".strip()))
    return fields


class Output:
    """Prints one command's results in `format` to `out` (stdout) and `err` (stderr)."""

    def __init__(
        self, format: Format = "text", out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.format = format
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    @property
    def json(self) -> bool:
        return self.format == "json"

    def _print(self, table: Table) -> None:
        if self.out.isatty():
            Console(file=self.out, highlight=False).print(table)
            return
        console = Console(file=self.out, width=_PIPE_WIDTH, highlight=False, color_system=None)
        with console.capture() as captured:
            console.print(table)
        # Cells are padded to their column's width; a pipe gets no trailing blanks.
        lines = (line.rstrip() for line in captured.get().splitlines())
        print("\n".join(lines), file=self.out, flush=True)

    def line(self, text: str) -> None:
        """A result line on stdout (text mode)."""
        print(text, file=self.out, flush=True)

    def lines(self, texts: Iterable[str]) -> None:
        """Result lines on stdout (text mode)."""
        print("\n".join(texts), file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Progress for a person, on stderr."""
        print(text, file=self.err, flush=True)

    def document(self, value: Any) -> None:
        """A JSON document on stdout."""
        print(to_json(value), file=self.out, flush=True)

    def result(self, value: Any, text: str) -> None:
        """`value` as JSON in json mode, else the line `text`."""
        if self.json:
            self.document(value)
        else:
            self.line(text)

    def record(self, value: Any, fields: Callable[[Any], Iterable[tuple[str, str]]]) -> None:
        """`value` as JSON in json mode, else its `fields(value)`, one a line."""
        if self.json:
            self.document(value)
        else:
            self.fields(fields(value))

    def logs(self, entries: Iterable[dict[str, Any]]) -> None:
        """A function's console logs, on stderr."""
        for entry in entries:
            print(log_line(entry), file=self.err)
        self.err.flush()

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, no_wrap=True)
        for row in rows:
            # Text, not markup: a value with brackets is shown as it is.
            table.add_row(*(Text(cell) for cell in row))
        self._print(table)

    def fields(self, pairs: Iterable[tuple[str, str]]) -> None:
        table = Table(box=None, pad_edge=False, show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, value in pairs:
            table.add_row(Text(key), Text(value))
        self._print(table)

    def error(self, error: CliError) -> None:
        """The error as one line on stderr (after the function's logs, if it ran); in json mode
        also its JSON document on stdout."""
        if isinstance(error, ApiError) and not self.json:
            self.logs(error.logs)
        if self.json:
            self.document(error.document())
        print(f"Error: {error.line()}", file=self.err, flush=True)
