"""Finding the workflow a command names as ``module:attribute``.

``examples.order_fulfilment:order_workflow`` imports ``examples.order_fulfilment`` (the working
directory is searched first, as ``python -m`` does) and takes its ``order_workflow`` attribute;
the attribute may be dotted (``app:registry.checkout``). It must be a committed `Workflow`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass

from spanflow.cli.errors import CommandError
from spanflow.workflows.workflow import Workflow

__all__ = ["WorkflowRef", "load_workflow", "workflow_ref"]


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    """A ``module:attribute`` reference, checked for shape but not imported yet."""

    module: str
    attribute: str

    def __str__(self) -> str:
        return f"{self.module}:{self.attribute}"


def workflow_ref(text: str) -> WorkflowRef:
    """argparse type: ``module:attribute``."""
    module, separator, attribute = text.partition(":")
    names = [*module.split("."), *attribute.split(".")]
    if not separator or not all(name.isidentifier() for name in names):
        raise argparse.ArgumentTypeError(
            f"expected module:attribute, such as examples.order_fulfilment:order_workflow, "
            f"got {text!r}"
        )
    return WorkflowRef(module, attribute)


def load_workflow(ref: WorkflowRef) -> Workflow:
    """Import the module and return the committed workflow the reference names.

    Raises:
        CommandError: The module cannot be imported, has no such attribute, or the attribute
            is not a committed workflow.
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(ref.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if ref.module == missing or ref.module.startswith(missing + "."):
            raise CommandError(
                f"cannot import {ref.module!r}: no module named {missing!r} (searched the "
                f"working directory and the installed packages)"
            ) from None
        raise CommandError(f"importing {ref.module!r} failed: {_describe(exc)}") from None
    except Exception as exc:
        raise CommandError(f"importing {ref.module!r} failed: {_describe(exc)}") from None
    value: object = module
    parts = ref.attribute.split(".")
    for index, name in enumerate(parts):
        if not hasattr(value, name):
            owner = ref.module if index == 0 else f"{ref.module}:{'.'.join(parts[:index])}"
            raise CommandError(f"{owner!r} has no attribute {name!r}")
        value = getattr(value, name)
    if not isinstance(value, Workflow):
        raise CommandError(f"{ref} is a {type(value).__name__}, not a spanflow Workflow")
    if not value.committed:
        raise CommandError(f"{ref} is a workflow that was never committed: call .commit() on it")
    return value


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
