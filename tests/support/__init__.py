"""Helpers for spanflow's own tests: things a test session starts and throws away."""
