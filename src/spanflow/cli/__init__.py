"""The ``spanflow`` command line: `main` parses arguments and runs a subcommand (``demo``)."""

__all__: list[str] = []
