"""The ``spanflow`` command: argument parsing and the error contract every subcommand shares.

Commands: ``demo`` (the order-fulfilment example, streamed live, then its span tree), ``run``
(any workflow, as ``module:attribute``), ``runs list | show | resume`` (stored runs),
``serve`` (a registry over HTTP, in Mastra's wire format), ``worker`` (a registry's queued
runs, executed from its job queue) and ``db migrate`` (create or upgrade the tables).

``main(argv)`` returns the exit code instead of exiting, so tests call it directly. Any error a
user can cause (an unknown command, a bad option, bad JSON, a module that does not import, an
unknown run, a store that cannot be opened) is reported as one line on stderr,
``spanflow: error: ...``, with a non-zero exit code (2 for a wrong command line, 1 otherwise);
no traceback. Warnings logged while a command runs are single lines too.

Run as the program (``argv`` taken from the command line), the command also installs its tracer
provider as OpenTelemetry's global one, so libraries instrumented inside steps nest their spans
under the step's; called with an explicit ``argv`` (tests, embedding) it leaves the global
provider alone.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from spanflow.cli import db, demo, run, runs, serve, worker
from spanflow.cli.errors import UsageError
from spanflow.cli.logs import command_logging
from spanflow.errors import SpanflowError

__all__ = ["UsageError", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran and what it ran did not succeed, or it could not run."""
EXIT_USAGE = 2
"""The command line was wrong."""
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` that raises `UsageError` rather than printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Like argparse's, but an unknown option names the subcommand's help, not the top's.

        argparse leaves what a subcommand did not recognise to the top-level parser, whose
        error would point at ``spanflow --help``; the subcommand that was given knows better.
        """
        options, extras = self.parse_known_args(args, namespace)
        if extras:
            command: argparse.ArgumentParser = getattr(options, "command_parser", self)
            raise UsageError(
                f"unrecognized arguments: {' '.join(extras)}{_did_you_mean(command, extras)} "
                f"(see '{command.prog} --help')"
            )
        return options


def _did_you_mean(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """``; did you mean --input?`` for the first unknown option close to a known one."""
    known = [flag for action in parser._actions for flag in action.option_strings]
    for extra in extras:
        if extra.startswith("--"):
            close = difflib.get_close_matches(extra.partition("=")[0], known, n=1)
            if close:
                return f"; did you mean {close[0]}?"
    return ""


def _version() -> str:
    try:
        return version("spanflow")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``spanflow`` and all its subcommands."""
    parser = _Parser(
        prog="spanflow",
        description="Typed AI workflows with OpenTelemetry tracing built in.",
    )
    parser.add_argument("--version", action="version", version=f"spanflow {_version()}")
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )
    demo.add_command(commands)
    run.add_command(commands)
    runs.add_command(commands)
    serve.add_command(commands)
    worker.add_command(commands)
    db.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``spanflow`` with `argv` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        options = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except SystemExit as exc:  # --help and --version print, then "exit" 0
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    handler: Handler | None = getattr(options, "handler", None)
    if handler is None:
        return _fail("no command given; try 'spanflow demo' (see 'spanflow --help')", EXIT_USAGE)
    options.as_program = argv is None
    name = getattr(options, "command_name", options.command)
    try:
        with command_logging():
            return handler(options)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except UsageError as exc:
        return _fail(f"{exc} (see 'spanflow {name} --help')", EXIT_USAGE)
    except (SpanflowError, OSError) as exc:
        return _fail(f"{name}: {_one_line(exc)}", EXIT_FAILED)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _fail(message: str, code: int) -> int:
    print(f"spanflow: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
