"""The job page of the review console: what it shows, in a fixed number of queries.

Frames and transcript slices are paginated (a 3,600-frame video costs what a 10-frame one
does); the label summary is one aggregate; the raw provider answer is shown truncated.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count, Max, Prefetch, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .. import reasons, review
from ..labels import label_name
from ..media import is_url
from ..models import AudioSlice, Decision, Frame, FrameLabel, Job, MediaKind
from .evidence import decorate, flagged_segments
from .evidence import frame_counts as evidence_counts
from .queue_page import LEVELS, content_admin_url, content_text, highlight

FRAMES_PER_PAGE = 60
SLICES_PER_PAGE = 100
EVENTS_SHOWN = 200
FEEDBACK_SHOWN = 20
FLAGGED_SLICES_READ = 500  # flagged slices read for the label summary
RAW_LIMIT = 50_000  # characters of the raw result shown on the page

#: the keyboard, as shown on the page (console.js implements it)
SHORTCUTS = [
    ("a", _("approve (pass) and open the next item")),
    ("r", _("reject (block) and open the next item")),
    ("n", _("skip: next item (releases your claim)")),
    ("j / k", _("next / previous frame (seeks the player)")),
    ("v", _("reveal / blur all flagged imagery on the page")),
    ("1 … 9", _("choose the policy reason of that number")),
    ("u", _("undo your last decision (shown after deciding)")),
]


def frame_page(job: Job, which: str, number) -> tuple[Any, str]:
    frames = Frame.objects.filter(job=job).only("id", "job_id", "offset", "risk_level",
                                                "thumbnail", "text_boxes")
    if which == "flagged":
        frames = frames.exclude(risk_level="none")
    elif which == "none":  # a clean job: a summary line, not a page of empty tiles
        frames = frames.none()
    labels = FrameLabel.objects.only("id", "frame_id", "label", "confidence", "risk_level",
                                     "description")
    page = Paginator(frames.prefetch_related(Prefetch("labels", queryset=labels)),
                     FRAMES_PER_PAGE).get_page(number)
    decorate(page.object_list)  # label names, OCR boxes, text-only blur
    return page, which


def slice_page(job: Job, number):
    page = Paginator(AudioSlice.objects.filter(job=job), SLICES_PER_PAGE).get_page(number)
    for part in page.object_list:
        part.html = highlight(part.text, part.risk_words)
        part.risky_labels = [lbl for lbl in part.labels
                             if lbl.get("risk_level", "none") != "none"]
    return page


def label_summary(job: Job) -> list[dict[str, Any]]:
    """Each risky label: frames and slices carrying it, highest frame confidence, risk."""
    rows: dict[str, dict[str, Any]] = {}
    found = (FrameLabel.objects.filter(frame__job=job).exclude(risk_level="none")
             .values_list("label", "risk_level")
             .annotate(frames=Count("frame", distinct=True), conf=Max("confidence"))
             .order_by())
    for label, level, frames, conf in found:
        row = rows.setdefault(label, {"label": label, "frames": 0, "slices": 0,
                                      "confidence": None, "rank": 0})
        row["frames"] += frames
        row["confidence"] = max(row["confidence"] or 0, conf)
        row["rank"] = max(row["rank"], review.RISK_RANKS.get(level, 0))
    # Slice labels live in JSON: read the labels of (at most) the first flagged slices.
    flagged = (AudioSlice.objects.filter(job=job).exclude(risk_level="none")
               .order_by("start", "id").values_list("labels", flat=True)[:FLAGGED_SLICES_READ])
    for labels in flagged:
        for lbl in labels or ():
            if lbl.get("risk_level", "none") == "none":
                continue
            row = rows.setdefault(lbl["label"], {"label": lbl["label"], "frames": 0,
                                                 "slices": 0, "confidence": None, "rank": 0})
            row["slices"] += 1
            row["confidence"] = max(row["confidence"] or 0, float(lbl.get("confidence", 0)))
            row["rank"] = max(row["rank"], review.RISK_RANKS.get(lbl["risk_level"], 0))
    for label, count in (job.audio_summary or {}).items():  # the whole count, if larger
        row = rows.setdefault(label, {"label": label, "frames": 0, "slices": 0,
                                      "confidence": None, "rank": 0})
        row["slices"] = max(row["slices"], count)
    for label in job.labels or ():
        rows.setdefault(label, {"label": label, "frames": 0, "slices": 0,
                                "confidence": None, "rank": 0})
    for row in rows.values():
        row["risk"] = LEVELS[row["rank"]] if row["rank"] else ""
        row["name"] = label_name(row["label"])  # translated; the code stays beside it
    return sorted(rows.values(), key=lambda r: (-r["rank"], -(r["confidence"] or 0),
                                                r["label"]))


def frame_counts(job: Job) -> dict[str, int]:
    return Frame.objects.filter(job=job).aggregate(
        total=Count("id"), flagged=Count("id", filter=~Q(risk_level="none")))


def player(job: Job) -> dict[str, Any] | None:
    """What the page plays: the job's original file through the permission-checked view."""
    if job.media_kind in (MediaKind.FRAMES, MediaKind.LIVE) or not job.file_name:
        return None
    if is_url(job.file_name):
        return None
    tag = {"image": "img", "video": "video", "audio": "audio"}[job.media_kind]
    return {"tag": tag, "url": reverse("moderation:job-media", args=[job.pk])}


def raw_text(job: Job) -> tuple[str, bool]:
    if job.raw_result is None:
        return "", False
    text = json.dumps(job.raw_result, indent=1, ensure_ascii=False, default=str)
    return text[:RAW_LIMIT], len(text) > RAW_LIMIT


def feedback_default(job: Job) -> str:
    if job.decision in (Decision.APPROVED, Decision.AUTO_PASS):
        return Decision.APPROVED
    if job.decision in (Decision.REJECTED, Decision.AUTO_BLOCK):
        return Decision.REJECTED
    return ""


def page_context(request, job: Job) -> dict[str, Any]:
    which = "all" if request.GET.get("frames") == "all" else "flagged"
    counts = evidence_counts(job.pk)  # total, flagged and the last offset
    if which == "flagged" and not counts["flagged"]:
        which = "none"
    frames, which = frame_page(job, which, request.GET.get("fpage"))
    # the timeline of flagged segments above the grid (its bars seek the player)
    _flagged, segments = flagged_segments(job.pk, counts)
    raw, raw_truncated = raw_text(job)
    events = list(job.events.select_related("actor").order_by("-created_at", "-id")
                  [:EVENTS_SHOWN])[::-1]
    for event in events:
        event.reason_label = reasons.label(event.reason_code)
    return {
        "frames_page": frames,
        "frame_filter": which,
        "frame_counts": counts,
        "segments": segments,
        "slices_page": slice_page(job, request.GET.get("spage")),
        "labels": label_summary(job),
        "content_url": content_admin_url(job),
        "content_text": content_text(job),
        "player": player(job),
        "raw": raw,
        "raw_truncated": raw_truncated,
        "events": events,
        "feedback_rows": list(job.feedback.select_related("created_by")[:FEEDBACK_SHOWN]),
        "feedback_default": feedback_default(job),
        "shortcuts": SHORTCUTS,
    }
