"""Repository-wide pytest setup: turn cases/**/*.yaml into test items (see harness/pytest_plugin.py)."""

pytest_plugins = ["harness.pytest_plugin"]
