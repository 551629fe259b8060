"""Tests of the ``spanflow`` command, its live display, and the example workflow it runs."""
