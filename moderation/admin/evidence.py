"""Evidence a moderator can read: label names, OCR boxes, segments of flagged frames.

Shared by the job list, the job change page and the review console. Everything here works
on rows already read (the callers read flagged frames and their labels in two queries), so
the pages' query counts do not grow with the number of frames.

* **Label names**: :func:`label_chip` shows a label's translated name from the label table
  (``labels.label_name``) with the code on hover (``title``).
* **Text boxes**: :func:`frame_overlay` turns a frame's stored OCR boxes (fractions of the
  frame) into percentages for a CSS overlay, marking the flagged ones; a frame whose only
  flags are text labels (``*_tii``) is *text-only*: the wellness blur covers just those
  regions instead of the whole picture.
* **Segments**: :func:`group_segments` folds runs of near-identical flagged frames (same
  risky labels, close offsets, similar PDQ hashes when both have one) into one segment of
  a timeline, shown with one representative thumbnail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db.models import Count, Max, Prefetch, Q
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..conf import moderation_settings
from ..labels import UNKNOWN_RULE, label_name, rule_for
from ..models import Frame, FrameLabel, RiskLevel
from ..providers.result import risk_rank

#: Offsets further apart than this many sampling intervals start a new segment (2.5: one
#: missed sample inside a run still joins it).
GAP_INTERVALS = 2.5
#: PDQ hashes (256 bits) more than this many bits apart are different pictures even with the
#: same labels; frames of one shot of a video are typically within it.
PDQ_NEAR = 90
#: Text labels: OCR found the words (labels.py, ``<label>_tii``).
TEXT_SUFFIX = "_tii"
#: Thumbnails shown when a segment is expanded (evenly picked over its frames).
SEGMENT_THUMBS = 12
#: Flagged frames read for a job's segments: two queries whatever the number; a video with
#: more is summarised on the review page, which pages through all of them.
SEGMENT_FRAMES_READ = 3000


def display_name(code: str) -> str:
    """A label's name from the label table, translated; a label the table does not know
    keeps its code (UNKNOWN_RULE's "label without a rule" would hide what it is)."""
    if rule_for(code) is UNKNOWN_RULE:
        return code
    return label_name(code)


def label_chip(code: str, confidence: float | None = None, level: str = "") -> SafeString:
    """``<span class="mod-label" title="code">human name 87%</span>``."""
    conf = f" {confidence:.0f}%" if confidence is not None else ""
    return format_html('<span class="mod-label mod-risk-{}" title="{}">{}{}</span>',
                       level or "none", code, display_name(code), conf)


def label_chips(codes: Iterable[str]) -> SafeString | str:
    """Several labels by name, codes on hover; ``-`` for none."""
    return format_html_join(" ", "{}", ((label_chip(code),) for code in codes)) or "-"


def risky_labels(frame: Any) -> tuple[str, ...]:
    """A frame's labels that carry a risk, sorted (uses the prefetched ``labels``)."""
    return tuple(sorted({lbl.label for lbl in frame.labels.all()
                         if lbl.risk_level != "none"}))


def is_text_only(labels: Sequence[str]) -> bool:
    return bool(labels) and all(code.endswith(TEXT_SUFFIX) for code in labels)


@dataclass
class Box:
    """One OCR line over the thumbnail, in percent of its size."""

    text: str
    left: float
    top: float
    width: float
    height: float
    flagged: bool
    labels: list[str]
    points: str  # SVG polygon points in 0..100


def frame_overlay(frame: Any, risky: Sequence[str] | None = None) -> list[Box]:
    """The frame's stored OCR boxes as percentages; a box is flagged when a label it gave
    carries a risk on this frame."""
    risky_set = set(risky if risky is not None else risky_labels(frame))
    boxes = []
    for item in getattr(frame, "text_boxes", None) or ():
        try:
            xs = [float(x) for x, _y in item["box"]]
            ys = [float(y) for _x, y in item["box"]]
        except (KeyError, TypeError, ValueError):
            continue
        if not xs:
            continue
        left, top = min(xs), min(ys)
        labels = [code for code in item.get("labels") or () if isinstance(code, str)]
        boxes.append(Box(
            text=str(item.get("text") or ""), left=round(left * 100, 2),
            top=round(top * 100, 2), width=round((max(xs) - left) * 100, 2),
            height=round((max(ys) - top) * 100, 2),
            flagged=bool(risky_set & set(labels)), labels=labels,
            points=" ".join(f"{x * 100:.2f},{y * 100:.2f}" for x, y in zip(xs, ys,
                                                                          strict=True)),
        ))
    return boxes


class FrameEvidence:
    """What a template shows of one frame, computed when first shown (a job page reads
    thousands of flagged frames for its segments and shows a few dozen)."""

    def __init__(self, frame: Any, risky: tuple[str, ...]):
        self.frame, self.risky = frame, risky

    @cached_property
    def boxes(self) -> list[Box]:
        return frame_overlay(self.frame, self.risky)

    @cached_property
    def text_only(self) -> bool:
        return is_text_only(self.risky) and any(b.flagged for b in self.boxes)

    @cached_property
    def chips(self) -> list[SafeString]:
        return [label_chip(lbl.label, lbl.confidence, lbl.risk_level)
                for lbl in self.frame.labels.all() if lbl.risk_level != "none"]


def decorate(frames: Iterable[Any]) -> None:
    """Set ``risky`` (the risky label codes) and ``evidence`` (a :class:`FrameEvidence`:
    OCR boxes, text-only, label chips) on frame rows whose labels are prefetched."""
    for frame in frames:
        frame.risky = risky_labels(frame)
        frame.evidence = FrameEvidence(frame, frame.risky)


def pdq_distance(a: str, b: str) -> int | None:
    """Hamming distance of two 64-hex-digit PDQ hashes; None when either is missing."""
    if len(a or "") != 64 or len(b or "") != 64:
        return None
    try:
        return (int(a, 16) ^ int(b, 16)).bit_count()
    except ValueError:
        return None


@dataclass
class Segment:
    """A run of near-identical flagged frames."""

    labels: tuple[str, ...]
    frames: list[Any] = field(default_factory=list)
    left: float = 0.0  # position on the timeline, percent
    width: float = 0.0

    @property
    def first(self) -> float:
        return self.frames[0].offset

    @property
    def last(self) -> float:
        return self.frames[-1].offset

    @property
    def count(self) -> int:
        return len(self.frames)

    @property
    def risk_level(self) -> str:
        return max((f.risk_level for f in self.frames), key=risk_rank, default="none")

    @cached_property
    def representative(self) -> Any:
        """The worst frame with a thumbnail (the earliest of equals), else the first."""
        with_thumb = [f for f in self.frames if getattr(f, "thumbnail", None)]
        if not with_thumb:
            return self.frames[0]
        return max(with_thumb, key=lambda f: (risk_rank(f.risk_level), -f.offset))

    @cached_property
    def others(self) -> list[Any]:
        """Up to SEGMENT_THUMBS frames besides the representative, evenly spread (cached:
        read only once the segment is complete)."""
        chosen = self.representative
        rest = [f for f in self.frames if f is not chosen]
        if len(rest) <= SEGMENT_THUMBS:
            return rest
        step = len(rest) / SEGMENT_THUMBS
        return [rest[int(i * step)] for i in range(SEGMENT_THUMBS)]

    @property
    def hidden(self) -> int:
        return max(0, self.count - 1 - len(self.others))

    @property
    def chips(self) -> list[SafeString]:
        return [label_chip(code) for code in self.labels]

    @property
    def names(self) -> list[str]:
        """The labels' names in the active language (the timeline's tooltips)."""
        return [display_name(code) for code in self.labels]


def group_segments(
    frames: Iterable[Any],
    interval: float = 1.0,
    labels_of: Callable[[Any], tuple[str, ...]] = risky_labels,
    duration: float | None = None,
) -> list[Segment]:
    """Fold flagged frames (any order) into segments: a frame joins the current segment when
    it has the same risky labels, follows within ``GAP_INTERVALS`` sampling ``interval``s,
    and (both hashed) its PDQ hash is within ``PDQ_NEAR`` bits of the previous frame's.
    With ``duration``, each segment gets its place on a timeline (percent)."""
    max_gap = max(interval, 0.001) * GAP_INTERVALS
    segments: list[Segment] = []
    previous = None
    for frame in sorted(frames, key=lambda f: (f.offset, getattr(f, "pk", 0) or 0)):
        labels = tuple(labels_of(frame))
        current = segments[-1] if segments else None
        joins = (
            current is not None and previous is not None
            and current.labels == labels
            and frame.offset - previous.offset <= max_gap
        )
        if joins:
            distance = pdq_distance(getattr(previous, "pdq", ""), getattr(frame, "pdq", ""))
            joins = distance is None or distance <= PDQ_NEAR
        if joins:
            current.frames.append(frame)
        else:
            segments.append(Segment(labels=labels, frames=[frame]))
        previous = frame
    if duration:
        for segment in segments:
            segment.left = round(min(segment.first / duration, 0.994) * 100, 2)
            span = (segment.last - segment.first + max(interval, 0.001)) / duration
            segment.width = round(min(max(span * 100, 0.6), 100 - segment.left), 2)
    return segments


def frame_counts(job_id) -> dict[str, Any]:
    """``{total, flagged, end}``: frames, flagged frames, the last offset (one query)."""
    return Frame.objects.filter(job_id=job_id).aggregate(
        total=Count("id"), flagged=Count("id", filter=~Q(risk_level=RiskLevel.NONE)),
        end=Max("offset"))


def flagged_segments(job_id, counts: dict[str, Any]) -> tuple[list[Any], list[Segment]]:
    """A job's flagged frames (at most SEGMENT_FRAMES_READ, decorated) and their segments
    placed on a timeline of the job's length: two queries, none when nothing is flagged."""
    if not counts.get("flagged"):
        return [], []
    labels = FrameLabel.objects.only("id", "frame_id", "label", "confidence", "risk_level",
                                     "description")
    frames = list(
        Frame.objects.filter(job_id=job_id).exclude(risk_level=RiskLevel.NONE)
        .only("id", "job_id", "offset", "risk_level", "thumbnail", "pdq", "text_boxes")
        .prefetch_related(Prefetch("labels", queryset=labels))[:SEGMENT_FRAMES_READ]
    )
    decorate(frames)
    interval = float(moderation_settings.VIDEO_INTERVAL or 1)
    duration = (counts.get("end") or 0.0) + interval
    return frames, group_segments(frames, interval=interval, labels_of=lambda f: f.risky,
                                  duration=duration)


__all__ = [
    "Box",
    "FrameEvidence",
    "Segment",
    "decorate",
    "display_name",
    "flagged_segments",
    "frame_counts",
    "frame_overlay",
    "group_segments",
    "is_text_only",
    "label_chip",
    "label_chips",
    "pdq_distance",
    "risky_labels",
]
