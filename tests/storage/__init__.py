"""Tests of the run stores: one contract suite run against every store, then each store's faults."""
