"""The demo's SECRET_KEY: random, made once per var directory, never a fixed string.

Signed media URLs, sessions and CSRF tokens all rest on it, and the web process and the
qcluster workers must share it, so it lives in a file of the var directory (mode 0600)
rather than in the source or in memory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE_NAME = "secret_key"


def load_or_create(var_dir: Path) -> str:
    """The key stored in ``var_dir``, created on first use.

    Written to a private temporary file, then linked into place: concurrent first starts
    (a web process and its workers) all end up reading the one complete key.
    """
    path = Path(var_dir) / FILE_NAME
    if not path.exists():
        tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
            with contextlib.suppress(FileExistsError):  # another process was first: use its key
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key: delete it to make a new one")
    return key
