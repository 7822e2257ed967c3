"""Moved to tests/security/test_network_guard.py. This name stays for bench/guarded_fetch.py,
which imports ``tests.test_network_guard``. No tests here: remove it once bench/ imports
``tests.security.test_network_guard``."""

from tests.security.test_network_guard import make_tls_context  # noqa: F401
