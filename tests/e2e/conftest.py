"""The end-to-end suites run against the real local server: its fixtures come from the local-mode tests."""

from tests.local.conftest import data_dir, mesh_analyzer, start_server  # noqa: F401  (fixtures)
