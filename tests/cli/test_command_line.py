"""The command line's contract across every subcommand: exit 2 for a wrong command line (the
error naming that subcommand's help), exit 1 for a store that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Cli

HELLO = "tests.cli.sample_workflows:hello"
ADA = '{"name": "Ada"}'

SUBCOMMANDS = {
    "demo": ["demo"],
    "run": ["run", HELLO],
    "runs list": ["runs", "list"],
    "runs show": ["runs", "show", "some-run"],
    "runs resume": ["runs", "resume", "some-run", "--workflow", HELLO],
}


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_an_unknown_option_points_at_the_subcommands_own_help(cli: Cli, name: str) -> None:
    done = cli(*SUBCOMMANDS[name], "--bogus")

    assert done.code == 2
    assert done.out == ""
    assert done.error_line == (
        f"spanflow: error: unrecognized arguments: --bogus (see 'spanflow {name} --help')"
    )


def test_a_mistyped_option_suggests_the_one_meant(cli: Cli) -> None:
    done = cli("run", HELLO, "--inptu", ADA)

    assert done.code == 2
    assert done.error_line == (
        f"spanflow: error: unrecognized arguments: --inptu {ADA}; did you mean --input? "
        "(see 'spanflow run --help')"
    )


@pytest.mark.parametrize(
    ("argv", "help_of"),
    [
        (["runs"], "runs"),
        (["runs", "frob"], "runs"),
        (["run"], "run"),
        (["run", "no-colon"], "run"),
        (["runs", "show"], "runs show"),
        (["runs", "list", "--limit", "0"], "runs list"),
        (["runs", "resume", "some-run"], "runs resume"),
        (["demo", "--speed", "fast"], "demo"),
        (["run", HELLO, "--input", "{not json"], "run"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else value,
)
def test_a_wrong_command_line_exits_2_in_every_subcommand(
    cli: Cli, argv: list[str], help_of: str
) -> None:
    done = cli(*argv)

    assert done.code == 2
    assert done.out == ""
    assert done.error_line.startswith("spanflow: error: ")
    assert done.error_line.endswith(f"(see 'spanflow {help_of} --help')")


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("run", ["run", HELLO, "--input", ADA]),
        ("runs list", ["runs", "list"]),
        ("runs show", ["runs", "show", "some-run"]),
        ("runs resume", ["runs", "resume", "some-run", "--workflow", HELLO]),
    ],
)
def test_an_unknown_storage_scheme_exits_1_and_names_the_url(
    cli: Cli, name: str, argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    done = cli(*argv, "--storage", "redis://x")

    assert done.code == 1
    assert done.out == ""
    assert done.error_line == (
        f"spanflow: error: {name}: --storage: unsupported storage URL 'redis://x': use "
        "memory://, sqlite:///path/to/file.db, postgresql://user@host/db or a file path"
    )
    assert list(tmp_path.iterdir()) == []
