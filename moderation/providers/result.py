"""The normalized result every provider returns (see docs/architecture.md).

Plain dataclasses with a JSON round trip, so a result can be stored on a job and
ingested again later (reuse of the same bytes, re-ingest after a policy change).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

RISK_LEVELS = ("none", "low", "medium", "high")
SUGGESTIONS = ("pass", "review", "block")
STATUSES = ("done", "in_progress", "queued", "failed")


def risk_rank(level: str) -> int:
    """Order of a risk level: none < low < medium < high."""
    return RISK_LEVELS.index(level)


def worst_risk(levels: Iterable[str]) -> str:
    """The highest of some risk levels (``none`` for no levels)."""
    return max(levels, key=risk_rank, default="none")


def probability(value: Any) -> float | None:
    """A probability as stored: within 0..1, or None when unknown or not a number (JSON
    has no NaN, and a provider's 1.0000001 is 1)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if value != value else min(max(value, 0.0), 1.0)  # NaN != NaN


@dataclass
class Label:
    label: str
    confidence: float = 100.0  # 0..100, as Alibaba 2.0 reports it
    risk_level: str = "none"
    service: str = ""
    scene: str = ""
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Label:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Frame:
    offset: float = 0.0  # seconds from the start; an image is one frame at 0
    risk_level: str = "none"
    labels: list[Label] = field(default_factory=list)
    # JPEG bytes of a thumbnail, or a provider URL to copy at ingest. Never serialized
    # into the stored result: evidence lives in evidence storage, not in JSON.
    image: bytes | str | None = None
    # The engine's PDQ hash of the frame as analysed, and its quality, when it computed
    # one; stored on the Frame row (feedback adds it to the hash libraries), not in the
    # result's JSON, where 7,200 frames would add half a megabyte.
    pdq: str = ""
    pdq_quality: int | None = None
    # Where the frame's OCR text is: [{"text", "box": [[x, y] * 4 in 0..1 of the frame],
    # "labels": [text labels the line's words gave]}] (local engine, flagged frames only);
    # the review pages draw and blur these regions.
    text_boxes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Frame:
        return cls(
            offset=float(data.get("offset", 0.0)),
            risk_level=data.get("risk_level", "none"),
            labels=[Label.from_dict(lbl) for lbl in data.get("labels", [])],
            image=data.get("image") if isinstance(data.get("image"), str) else None,
            text_boxes=[dict(b) for b in data.get("text_boxes") or () if isinstance(b, dict)],
        )


@dataclass
class Slice:
    start: float
    end: float
    text: str = ""
    labels: list[Label] = field(default_factory=list)
    risk_words: list[str] = field(default_factory=list)
    risk_level: str = "none"
    audio: bytes | str | None = None
    # The language the recogniser detected in this slice ("en", "zh"; "" when it does not
    # say) and its probability 0..1 (None when unknown). See docs/providers.md "Language".
    language: str = ""
    language_confidence: float | None = None
    # Where the risk words were said: [{"word", "start", "end"}] in seconds (local ASR).
    words: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Slice:
        language_confidence = data.get("language_confidence")
        return cls(
            start=float(data["start"]),
            end=float(data["end"]),
            text=data.get("text", ""),
            labels=[Label.from_dict(lbl) for lbl in data.get("labels", [])],
            risk_words=list(data.get("risk_words", [])),
            risk_level=data.get("risk_level", "none"),
            audio=data.get("audio") if isinstance(data.get("audio"), str) else None,
            language=str(data.get("language") or ""),
            language_confidence=probability(language_confidence),
            words=[dict(w) for w in data.get("words") or () if isinstance(w, dict)],
        )


@dataclass
class Result:
    status: str = "done"
    #: the site's policy applied to ``risk_level``: set by the pipeline when it decides the
    #: job (pipeline.verdict.apply_policy), never by a provider, which returns findings only
    suggestion: str = "pass"
    risk_level: str = "none"
    labels: list[Label] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    slices: list[Slice] = field(default_factory=list)
    frame_summary: dict[str, int] = field(default_factory=dict)
    audio_summary: dict[str, int] = field(default_factory=dict)
    task_id: str = ""
    raw: Any = None
    # Seconds of sound the provider listened to. A silent track yields no slice, so this
    # tells "heard nothing" (analysed) apart from "had nothing to hear" (see analysed).
    audio_seconds: float = 0.0
    # Frames the provider looked at without reporting each one (IMM lists only its blocked
    # frames, with a TotalCount): a clean video is analysed although ``frames`` is empty.
    frames_analysed: int = 0

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def analysed(self) -> bool:
        """Whether anything was looked at or listened to: a frame, a slice, some audio.
        A done result that analysed nothing never passes (pipeline.ingest)."""
        return bool(self.frames or self.slices or self.audio_seconds > 0
                    or self.frames_analysed > 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; evidence bytes are dropped (URLs are kept)."""
        data = asdict(self)
        for part in data["frames"]:
            if not isinstance(part.get("image"), str):
                part["image"] = None
            part.pop("pdq", None)
            part.pop("pdq_quality", None)
        for part in data["slices"]:
            if not isinstance(part.get("audio"), str):
                part["audio"] = None
            part["language_confidence"] = probability(part.get("language_confidence"))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(
            status=data.get("status", "done"),
            suggestion=data.get("suggestion", "pass"),
            risk_level=data.get("risk_level", "none"),
            labels=[Label.from_dict(lbl) for lbl in data.get("labels", [])],
            frames=[Frame.from_dict(f) for f in data.get("frames", [])],
            slices=[Slice.from_dict(s) for s in data.get("slices", [])],
            frame_summary=dict(data.get("frame_summary", {})),
            audio_summary=dict(data.get("audio_summary", {})),
            task_id=data.get("task_id", ""),
            raw=data.get("raw"),
            audio_seconds=float(data.get("audio_seconds") or 0.0),
            frames_analysed=int(data.get("frames_analysed") or 0),
        )

    def all_labels(self) -> list[Label]:
        """Job-level labels plus every frame's and slice's labels."""
        out = list(self.labels)
        parts: list[Frame | Slice] = [*self.frames, *self.slices]
        for part in parts:
            out.extend(part.labels)
        return out
