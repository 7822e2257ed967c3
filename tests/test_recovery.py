"""Moved to tests/security/test_recovery.py. This name stays for bench/recovery.py,
which imports ``tests.test_recovery``. No tests here: remove it once bench/ imports
``tests.security.test_recovery``."""

from tests.security.test_recovery import _busy_worker, _make_video, _running  # noqa: F401
