"""Events, env pairs, code files and names, as checked before anything is sent."""

from __future__ import annotations

import io
import re
from pathlib import Path

import click
import pytest

from vortex_cli.inputs import check_name, name_from, parse_env, read_code, read_event
from vortex_kube.contract import FUNCTION_NAME_PATTERN


def test_no_data_is_no_event() -> None:
    assert read_event(None) is None


def test_a_json_value_is_sent_as_written() -> None:
    assert read_event('{ "b": 2,  "a": [1.50] }') == b'{ "b": 2,  "a": [1.50] }'


def test_a_file(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(b'{"name": "caf\xc3\xa9"}\n')

    assert read_event(f"@{path}") == b'{"name": "caf\xc3\xa9"}\n'


@pytest.mark.parametrize("data", ["-", "@-"])
def test_stdin(data: str) -> None:
    assert read_event(data, io.BytesIO(b"[1, 2]")) == b"[1, 2]"


def test_empty_stdin_is_the_null_event() -> None:
    assert read_event("-", io.BytesIO(b"")) == b""


@pytest.mark.parametrize("data", ["{bad", "NaN", "[Infinity]", "'x'", "{} {}"])
def test_what_is_not_json_is_bad_usage(data: str) -> None:
    with pytest.raises(click.BadParameter, match="not JSON"):
        read_event(data)


def test_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(b"\xff\xfe")

    with pytest.raises(click.BadParameter, match=r"event\.json is not JSON"):
        read_event(f"@{path}")


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(click.BadParameter, match="cannot read"):
        read_event(f"@{tmp_path / 'nope.json'}")


def test_env_pairs() -> None:
    assert parse_env(("A=1", "B=x=y", "C=", "A=2")) == {"A": "2", "B": "x=y", "C": ""}


@pytest.mark.parametrize("pair", ["A", "=1", ""])
def test_env_pairs_need_a_name_and_an_equals_sign(pair: str) -> None:
    with pytest.raises(click.BadParameter, match="NAME=VALUE"):
        parse_env((pair,))


def test_code_must_be_utf8(tmp_path: Path) -> None:
    path = tmp_path / "f.js"
    path.write_bytes(b"return '\xff';")

    with pytest.raises(click.BadParameter, match="not UTF-8"):
        read_code(path)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("hello", "hello"),
        ("My_Function", "my-function"),
        ("  weird..name  ", "weird-name"),
        ("___", "hello"),
        ("x" * 80, "x" * 60),
    ],
)
def test_names_made_from_paths(text: str, name: str) -> None:
    assert name_from(text) == name
    assert re.match(FUNCTION_NAME_PATTERN, name)


@pytest.mark.parametrize("name", ["Hello", "a_b", "-a", "a-", "x" * 61, ""])
def test_invalid_names(name: str) -> None:
    with pytest.raises(click.BadParameter, match="is not a function name"):
        check_name(name)
