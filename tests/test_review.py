"""Moved to tests/pipeline/test_review.py. This name stays for bench/console.py,
which imports ``tests.test_review``. No tests here: remove it once bench/ imports
``tests.pipeline.test_review``."""

from tests.pipeline.test_review import make_job, moderator  # noqa: F401
