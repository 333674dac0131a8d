"""Helpers shared by the test suite and the benchmarks: fakes, AWS set-up, clip reading."""
