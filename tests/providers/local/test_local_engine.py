"""The local provider's image engine, with the real models, on the committed samples."""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from moderation.labels import DEFAULT_LABELS
from moderation.libraries import HashLibrary
from moderation.providers.base import Media, ModerationRequest
from moderation.providers.errors import MediaError, NotSupported
from moderation.providers.local import LocalProvider
from moderation.providers.local.engine import NUDENET_LABELS, get_engine, nudenet_labels
from moderation.providers.result import Result

SAMPLES = Path(__file__).resolve().parents[3] / "demo_project" / "sample_media"
QR_URL = "https://example.com/promo?ref=demo"
ALL_SCENES = ["porn", "qrcode", "ad"]
THUMBNAIL_SIZE = 200


def media(data: bytes, name: str = "upload.jpg", kind: str = "image") -> Media:
    return Media(name=name, kind=kind, opener=lambda: io.BytesIO(data), size=len(data))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(
        b"IEND", b""
    )


@dataclass
class Match:
    list_type: str
    label: str
    distance: int


class FakeLibraries:
    """Answers every lookup with one match; remembers what it was asked."""

    def __init__(self, match: Match | None):
        self.answer = match
        self.asked: list[tuple[str, int]] = []

    def match(self, pdq_hex: str, quality: int) -> Match | None:
        self.asked.append((pdq_hex, quality))
        return self.answer


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    provider = LocalProvider("local", {"thumbnail_size": THUMBNAIL_SIZE})
    get_engine(provider.options).warm_up()  # load the models once for the module
    return provider


@pytest.fixture(scope="module")
def results(provider) -> dict[str, Result]:
    """Each sample analysed once with every scene, shared by the tests below."""
    names = ("benign.jpg", "qrcode.jpg", "ad_text.png")
    request = ModerationRequest(scenes=ALL_SCENES, options={"keywords": {}})
    return {name: provider.submit(media(sample(name), name), request) for name in names}


def names(result: Result) -> list[str]:
    return [label.label for label in result.labels]


# --- the samples ---------------------------------------------------------------------------


def test_benign_photo_is_clean(results):
    result = results["benign.jpg"]
    assert names(result) == ["nonLabel"]
    assert result.risk_level == "none"
    assert result.raw["nudenet"] == [] and result.raw["qr"] == [] and result.raw["ocr"] == []


def test_qr_code_is_found_and_decoded(results):
    result = results["qrcode.jpg"]
    assert names(result) == ["pt_qrCode"]
    (label,) = result.labels
    assert label.description == QR_URL
    assert label.confidence == 100
    assert (label.risk_level, label.scene) == ("medium", "qrcode")
    assert result.raw["qr"][0]["payload"] == QR_URL
    # the code is blanked before OCR, so PP-OCR invents no text on it
    assert result.raw["ocr"] == []


def test_ad_text_gives_contact_label_from_both_lines(results):
    result = results["ad_text.png"]
    assert names(result) == ["pt_toDirectContact_tii"]
    (label,) = result.labels
    assert label.risk_level == "medium" and label.scene == "ad"
    lines = [line["text"] for line in result.raw["ocr"]]
    english = next(line for line in lines if "WhatsApp" in line)
    chinese = next(line for line in lines if "微信" in line)
    risk_words = {word for hit in result.raw["text_hits"] for word in hit["risk_words"]}
    assert any(word in english for word in risk_words)
    assert any(word in chinese for word in risk_words)
    assert "加微信" in label.description and "WhatsApp" in label.description


def test_ocr_boxes_are_kept_with_the_frame(results):
    """The review pages draw these over the thumbnail and blur the flagged ones."""
    (frame,) = results["ad_text.png"].frames
    flagged = [box for box in frame.text_boxes if box["labels"]]
    assert flagged and {lbl for box in flagged for lbl in box["labels"]} == {
        "pt_toDirectContact_tii"}
    assert any("微信" in box["text"] for box in flagged)
    assert all(0 <= x <= 1 and 0 <= y <= 1 for box in frame.text_boxes for x, y in box["box"])
    assert Result.from_dict(results["ad_text.png"].to_dict()).frames[0].text_boxes == (
        frame.text_boxes)
    assert results["benign.jpg"].frames[0].text_boxes == []


def test_result_shape_and_json(results):
    result = results["ad_text.png"]
    (frame,) = result.frames
    assert frame.offset == 0 and frame.risk_level == result.risk_level
    assert [lbl.label for lbl in frame.labels] == names(result)
    raw = json.loads(json.dumps(result.raw))
    assert set(raw["timings_ms"]) == {"decode", "pdq", "nudenet", "qr", "ocr", "rules", "thumbnail"}
    assert len(raw["pdq"]["hash"]) == 64 and int(raw["pdq"]["hash"], 16) >= 0
    assert 0 <= raw["pdq"]["quality"] <= 100
    assert Result.from_dict(result.to_dict()).labels == result.labels


def test_thumbnail_is_a_jpeg_of_the_configured_size(results):
    for result in results.values():
        thumbnail = Image.open(io.BytesIO(result.frames[0].image))
        assert thumbnail.format == "JPEG"
        assert max(thumbnail.size) == THUMBNAIL_SIZE


def test_request_keywords_override_the_setting(provider):
    request = ModerationRequest(scenes=["ad"], options={"keywords": {"gamble": ["cheap deals"]}})
    result = provider.submit(media(sample("ad_text.png")), request)
    assert "gamble_tii" in names(result)
    assert next(lbl for lbl in result.labels if lbl.label == "gamble_tii").risk_level == "high"


def test_scenes_select_detectors_and_unknown_ones_are_listed(provider):
    request = ModerationRequest(scenes=["qrcode", "violence"])
    result = provider.submit(media(sample("qrcode.jpg")), request)
    assert names(result) == ["pt_qrCode"]
    assert result.raw["ignored_scenes"] == ["violence"]
    assert "nudenet" not in result.raw["timings_ms"] and "ocr" not in result.raw["timings_ms"]


def test_default_scenes_when_the_request_names_none(provider):
    result = provider.submit(media(sample("benign.jpg")), ModerationRequest())
    assert result.raw["scenes"] == sorted(provider.default_scenes)


# --- NudeNet mapping -----------------------------------------------------------------------


def test_nudenet_mapping_keeps_the_best_score_per_label():
    detections = [
        {"class": "FEMALE_BREAST_EXPOSED", "score": 0.81, "box": [0, 0, 5, 5]},
        {"class": "MALE_GENITALIA_EXPOSED", "score": 0.9, "box": [0, 0, 5, 5]},
        {"class": "BUTTOCKS_EXPOSED", "score": 0.4, "box": [0, 0, 5, 5]},
        {"class": "BUTTOCKS_COVERED", "score": 0.6, "box": [0, 0, 5, 5]},
        {"class": "FACE_FEMALE", "score": 0.99, "box": [0, 0, 5, 5]},
    ]
    labels = {label.label: label for label in nudenet_labels(detections)}
    assert set(labels) == {
        "pornographic_adultContent",
        "sexual_partialNudity",
        "sexual_suggestiveContent",
    }
    porn = labels["pornographic_adultContent"]
    assert (porn.confidence, porn.risk_level, porn.scene) == (90, "high", "porn")
    assert porn.description == "FEMALE_BREAST_EXPOSED, MALE_GENITALIA_EXPOSED"
    # below the label's 50 % threshold: kept, but without risk
    partial = labels["sexual_partialNudity"]
    assert (partial.confidence, partial.risk_level) == (40, "none")
    assert labels["sexual_suggestiveContent"].risk_level == "low"


def test_nudenet_mapping_targets_known_labels():
    assert set(NUDENET_LABELS.values()) <= set(DEFAULT_LABELS)
    assert nudenet_labels([]) == []


# --- hash libraries ------------------------------------------------------------------------


def test_allow_list_hit_skips_every_detector(provider):
    libraries = FakeLibraries(Match("allow", "", 3))
    request = ModerationRequest(scenes=ALL_SCENES, libraries=libraries)
    result = provider.submit(media(sample("ad_text.png")), request)
    assert names(result) == ["nonLabel_lib"]
    assert result.risk_level == "none"
    assert result.raw["skipped"] == ["ad", "porn", "qrcode"]
    assert not {"ocr", "nudenet", "qr", "rules"} & set(result.raw["timings_ms"])
    ((pdq_hex, quality),) = libraries.asked
    assert pdq_hex == result.raw["pdq"]["hash"] and quality == result.raw["pdq"]["quality"]


def test_block_list_hit_adds_a_lib_label(provider):
    request = ModerationRequest(
        scenes=["porn"], libraries=FakeLibraries(Match("block", "violent_explosion", 0))
    )
    result = provider.submit(media(sample("benign.jpg")), request)
    assert names(result) == ["violent_explosion_lib"]
    (label,) = result.labels
    assert (label.confidence, label.risk_level, label.scene) == (100, "high", "lib")


def test_matches_beyond_the_threshold_are_ignored():
    provider = LocalProvider("local", {"pdq_threshold": 10})
    request = ModerationRequest(scenes=[], libraries=FakeLibraries(Match("block", "x", 11)))
    result = provider.submit(media(sample("benign.jpg")), request)
    assert names(result) == ["nonLabel"]
    assert result.raw["library_match"] is None


def test_hash_matches_the_real_library_format(provider, results):
    pdq_hex = results["benign.jpg"].raw["pdq"]["hash"]
    library = HashLibrary([(1, "allow", "", pdq_hex)], threshold=31)
    request = ModerationRequest(scenes=ALL_SCENES, libraries=library)
    # the same picture re-encoded as PNG hashes within the threshold
    png = io.BytesIO()
    Image.open(SAMPLES / "benign.jpg").save(png, "PNG")
    result = provider.submit(media(png.getvalue(), "benign.png"), request)
    assert names(result) == ["nonLabel_lib"]


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty_file"),
        (sample("benign.jpg")[:20_000], "corrupt_image"),
        (b"hello, this is a text file\n" * 20, "not_an_image"),
        (png_claiming(100_000, 100_000), "image_too_large"),  # past Pillow's own limit
        (png_claiming(10_000, 5_000), "image_too_large"),  # past MAX_IMAGE_PIXELS only
        (png_claiming(0, 0), "empty_image"),
        (png_claiming(0, 10), "empty_image"),
    ],
    ids=["empty", "truncated", "text", "bomb", "over-limit", "0x0", "0x10"],
)
def test_bad_input_raises_media_error(provider, data, code):
    with pytest.raises(MediaError) as error:
        provider.submit(media(data), ModerationRequest(scenes=ALL_SCENES))
    assert error.value.code == code
    assert "\n" not in error.value.message


def test_byte_limit_from_options():
    provider = LocalProvider("local", {"max_image_bytes": 1000})
    with pytest.raises(MediaError) as error:
        provider.submit(media(sample("ad_text.png")), ModerationRequest())
    assert error.value.code == "file_too_large"


def test_capabilities_and_unsupported_kinds(provider):
    assert {"image", "video", "audio", "frames", "live", "sync"} <= provider.capabilities
    assert not provider.supports("feedback")
    with pytest.raises(NotSupported):
        provider.submit(media(b"\0" * 10, "x.bin", kind="hologram"), ModerationRequest())
