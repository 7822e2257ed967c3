"""Typed code that .ci/typecheck checks (never collected by pytest): tests/typing/site_usage.py."""
