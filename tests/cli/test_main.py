"""The ``spanflow`` command's contract: help works, and every error is one line and non-zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanflow.cli.main import main


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_an_unknown_command_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bogus"])

    assert code == 2
    [line] = stderr_lines(capsys)
    assert line.startswith("spanflow: error: ")
    assert "'bogus'" in line
    assert "demo" in line


def test_no_command_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([])

    assert code == 2
    assert stderr_lines(capsys) == [
        "spanflow: error: no command given; try 'spanflow demo' (see 'spanflow --help')"
    ]


def test_a_bad_option_value_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--speed", "0"])

    assert code == 2
    assert stderr_lines(capsys) == [
        "spanflow: error: argument --speed: expected a number above 0, got '0' "
        "(see 'spanflow demo --help')"
    ]


def test_a_store_that_cannot_be_opened_is_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["demo", "--db", str(tmp_path / "missing-dir" / "runs.db")])

    captured = capsys.readouterr()
    assert code == 1
    [line] = captured.err.splitlines()
    assert line.startswith("spanflow: error: demo: cannot open SQLite database ")
    assert captured.out == ""


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"]])
def test_help_prints_usage_and_exits_zero(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)

    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.startswith("usage: spanflow")
    assert "demo" in captured.out
    assert captured.err == ""


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("spanflow ")
