"""The review queue page's data: filters and rows, in a fixed number of queries per page.

Each row needs the content object (one prefetch per content type), the worst labels with
their confidence (one aggregate over the page's frame labels), a few flagged frames (one
sliced prefetch, a window function per job) and the first flagged transcript slice (the
same), whatever the size of the jobs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.db.models import Max, Prefetch, QuerySet, prefetch_related_objects
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from .. import claims, review
from ..models import AudioSlice, Frame, FrameLabel, Job, MediaKind
from .progress import is_id

PAGE_SIZE = 50
STRIP_SIZE = 4  # flagged thumbnails per row
LABELS_PER_ROW = 3
AGES = {  # filter value -> (title, seconds): items older than that
    "1h": (_("older than 1 hour"), 3600),
    "24h": (_("older than 24 hours"), 86400),
    "7d": (_("older than 7 days"), 7 * 86400),
}


@dataclass
class Filters:
    provider: str = ""
    label: str = ""
    kind: str = ""
    content_type: str = ""
    age: str = ""

    @classmethod
    def from_query(cls, params) -> Filters:
        kind = params.get("kind", "")
        age = params.get("age", "")
        ct = params.get("content_type", "")
        return cls(
            provider=params.get("provider", "")[:50],
            label=params.get("label", "")[:100],
            kind=kind if kind in MediaKind.values else "",
            content_type=ct if is_id(ct) else "",
            age=age if age in AGES else "",
        )

    def apply(self, qs: QuerySet[Job], now=None) -> QuerySet[Job]:
        if self.provider:
            qs = qs.filter(provider=self.provider)
        if self.label:
            qs = qs.carrying_label(self.label)
        if self.kind:
            qs = qs.filter(media_kind=self.kind)
        if self.content_type:
            qs = qs.filter(content_type_id=int(self.content_type))
        if self.age:
            qs = qs.filter(created_at__lte=(now or timezone.now())
                           - timedelta(seconds=AGES[self.age][1]))
        return qs

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


def filter_choices() -> dict[str, Any]:
    """What the filters offer: values present in the pending queue (three queries)."""
    pending = Job.objects.review_pending().order_by()
    labels: set[str] = set()
    for names in pending.values_list("labels", flat=True)[:5000]:
        labels.update(names or ())
    ct_ids = set(pending.values_list("content_type_id", flat=True).distinct())
    return {
        "providers": sorted(set(pending.values_list("provider", flat=True).distinct())),
        "labels": sorted(labels),
        "kinds": MediaKind.choices,
        "content_types": [(str(ct.pk), f"{ct.app_label}.{ct.model}")
                          for ct in ContentType.objects.filter(pk__in=ct_ids - {None})
                          .order_by("app_label", "model")],
        "ages": [(key, title) for key, (title, _s) in AGES.items()],
    }


@dataclass
class Row:
    job: Job
    review_url: str
    content_url: str | None
    content_text: str
    labels: list[tuple[str, float, str]] = field(default_factory=list)
    strip: list[Frame] = field(default_factory=list)
    flagged_total: int = 0
    transcript: AudioSlice | None = None
    transcript_html: SafeString | str = ""
    holder: Any = None  # the user holding a live claim
    mine: bool = False


def strip_prefetch() -> Prefetch:
    frames = (Frame.objects.exclude(risk_level="none").exclude(thumbnail="")
              .annotate(rank=review.risk_rank()).order_by("-rank", "offset", "id")
              .only("id", "job_id", "offset", "risk_level", "thumbnail"))
    return Prefetch("frames", queryset=frames[:STRIP_SIZE], to_attr="strip_frames")


def transcript_prefetch(count: int = 1) -> Prefetch:
    slices = (AudioSlice.objects.exclude(risk_level="none")
              .annotate(rank=review.risk_rank()).order_by("-rank", "start", "id")
              .defer("clip"))
    return Prefetch("slices", queryset=slices[:count], to_attr="flagged_slices")


def worst_labels(job_ids: list[int]) -> dict[int, dict[str, tuple[int, float]]]:
    """job id -> {label: (risk rank, highest confidence)} over the jobs' flagged frames."""
    out: dict[int, dict[str, tuple[int, float]]] = {}
    rows = (FrameLabel.objects.filter(frame__job__in=job_ids).exclude(risk_level="none")
            .values_list("frame__job", "label", "risk_level")
            .annotate(conf=Max("confidence")).order_by())
    for job_id, label, level, conf in rows:
        _merge(out.setdefault(job_id, {}), label, review.RISK_RANKS.get(level, 0), conf)
    return out


def _merge(into: dict, label: str, rank: int, conf: float) -> None:
    old = into.get(label)
    if old is None or (rank, conf) > old:
        into[label] = (rank, conf)


LEVELS = {rank: level for level, rank in review.RISK_RANKS.items()}


def highlight(text: str, words) -> SafeString:
    """``text`` escaped, with each risk word in <mark>."""
    words = sorted({w for w in (words or ()) if w and w.strip()}, key=len, reverse=True)
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out, pos = [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[pos:match.start()]))
        out.append(f"<mark>{escape(match.group(0))}</mark>")
        pos = match.end()
    out.append(escape(text[pos:]))
    return mark_safe("".join(out))  # every piece is escaped above


def content_admin_url(job: Job) -> str | None:
    if job.content_type_id is None or job.content_object is None:
        return None
    ct = job.content_type
    try:
        return reverse(f"admin:{ct.app_label}_{ct.model}_change", args=[job.object_id])
    except NoReverseMatch:
        return None


def content_text(job: Job) -> str:
    if job.content_type_id is None:
        return _("ad-hoc: %(name)s") % {"name": job.file_name}
    target = job.content_object
    if target is None:
        return _("%(type)s %(id)s (deleted)") % {"type": job.content_type, "id": job.object_id}
    return f"{target} · {job.field_name}"


def build_page(request, qs: QuerySet[Job], page_number) -> tuple[Any, list[Row]]:
    """One page of the queue as rows."""
    qs = (qs.select_related("content_type", "claimed_by")
          .defer("result", "raw_result", "options", "frame_summary", "audio_summary"))
    page = Paginator(qs, PAGE_SIZE).get_page(page_number)
    jobs = list(page.object_list)
    prefetch_related_objects(jobs, "content_object", strip_prefetch(), transcript_prefetch())
    labels = worst_labels([job.pk for job in jobs])
    now = timezone.now()
    rows = []
    for job in jobs:
        found = dict(labels.get(job.pk, {}))
        for part in job.flagged_slices:
            for lbl in part.labels:
                if lbl.get("risk_level", "none") != "none":
                    _merge(found, lbl["label"], review.RISK_RANKS.get(lbl["risk_level"], 0),
                           float(lbl.get("confidence", 0)))
        worst = sorted(found.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        holder_id = claims.claim_holder_id(job, now)
        transcript = job.flagged_slices[0] if job.flagged_slices else None
        rows.append(Row(
            job=job,
            review_url=reverse("admin:moderation_job_review", args=[job.pk]),
            content_url=content_admin_url(job),
            content_text=content_text(job),
            labels=[(name, conf, LEVELS[rank]) for name, (rank, conf)
                    in worst[:LABELS_PER_ROW]],
            strip=job.strip_frames,
            transcript=transcript,
            transcript_html=(highlight(transcript.text, transcript.risk_words)
                             if transcript else ""),
            holder=job.claimed_by if holder_id else None,
            mine=holder_id == request.user.pk,
        ))
    return page, rows
