"""The ``local`` extra installs one OpenCV build, and its OCR needs no network (issue 15.4).

Two OpenCV wheels (the GUI ``opencv-python`` and ``opencv-python-headless``) write the same
``cv2/`` package; rapidocr-onnxruntime declared the GUI one and installs had to swap it. The
OCR models must come inside the PyPI package: rapidocr 3 downloads any model it does not
bundle, so loading and reading must work with the network cut.
"""

from __future__ import annotations

import importlib.metadata
import socket
import tomllib

import cv2
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from moderation.providers.local.engine import EngineConfig, LocalEngine
from tests.conftest import ROOT

SAMPLES = ROOT / "demo_project" / "sample_media"


def local_closure() -> set[str]:
    """Every distribution the ``local`` extra pulls in, read from the installed metadata."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["local"]
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in extra]
    while todo:
        req, from_extra = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": from_extra}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # the test below names what is missing
        todo += [(Requirement(r), extra) for r in requires for extra in ("", *req.extras)]
    return seen


def test_the_local_extra_declares_only_the_headless_opencv():
    closure = local_closure()
    assert "opencv-python-headless" in closure
    assert "rapidocr" in closure and "nudenet" in closure
    gui = {"opencv-python", "opencv-contrib-python"} & closure
    assert not gui, f"{gui} would overwrite the headless cv2 (docs/install.md)"


def test_the_installed_rapidocr_declares_the_headless_opencv():
    requires = [Requirement(r).name for r in importlib.metadata.requires("rapidocr") or []]
    assert "opencv-python-headless" in requires and "opencv-python" not in requires


@pytest.mark.slow  # about 2 s: loads the OCR models
def test_ocr_loads_and_reads_with_the_network_cut(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network cut by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    engine = LocalEngine(EngineConfig())
    lines = engine.read_text(cv2.imread(str(SAMPLES / "ad_text.png")))
    texts = [line["text"] for line in lines]
    assert any("WhatsApp" in t for t in texts) and "加微信领取免费礼品" in texts
    for line in lines:  # the engine's output shape: text, a score in (0, 1], 4 integer points
        assert isinstance(line["text"], str) and 0 < line["score"] <= 1
        assert len(line["box"]) == 4 and all(isinstance(v, int) for p in line["box"] for v in p)
    blank = cv2.imread(str(SAMPLES / "benign.jpg"))
    assert engine.read_text(blank) == []
