"""The overview page of the admin (``/admin/moderation/job/overview/``, ``view_job``):
volume per day by verdict, the review queue over time, label trends, decisions per
moderator and provider errors, over 7, 30 or 90 days or a from/to range.

The charts are SVG drawn on the server: the geometry is computed here (plain dataclasses),
the template writes ``<rect>``/``<polyline>`` elements with a ``<title>`` each (the
browser's tooltip), and every chart has its figures as a table underneath. No JavaScript,
no chart library, nothing fetched from a CDN. The figures come from ``moderation.overview``
in a fixed number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.dateparse import parse_date
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import alerts
from .. import overview as data
from .evidence import display_name

VIEW = "moderation.view_job"

#: chart size in SVG units (the SVG scales to the page's width)
WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP, RIGHT = 48, 24, 10, 12
#: at most this many day labels under a chart
MAX_X_LABELS = 6

VERDICT_SERIES = (
    ("auto_pass", gettext_lazy("passed automatically"), "#2e7d32"),
    ("approved", gettext_lazy("approved by a moderator"), "#81c784"),
    ("review_pending", gettext_lazy("waiting for review"), "#c77c00"),
    ("rejected", gettext_lazy("rejected by a moderator"), "#e57373"),
    ("auto_block", gettext_lazy("blocked automatically"), "#ba2121"),
    ("unfinished", gettext_lazy("not finished"), "#9e9e9e"),
    ("failed", gettext_lazy("failed or expired"), "#424242"),
)
ERROR_SERIES = (
    ("retry", gettext_lazy("retries scheduled"), "#f0b400"),
    ("failed", gettext_lazy("failed"), "#ba2121"),
    ("expired", gettext_lazy("expired"), "#6d4c41"),
)
PALETTE = ("#447e9b", "#ba2121", "#c77c00", "#2e7d32", "#7b1fa2", "#00838f", "#5d4037")


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass
class Line:
    colour: str
    title: str
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str]] = field(default_factory=list)  # (x, y, tooltip)


@dataclass
class Tick:
    position: float
    text: str


@dataclass
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass
class Chart:
    """What the template needs to draw one chart."""

    title: str
    width: int = WIDTH
    height: int = HEIGHT
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    # (colour, title, hover text: a label's code, else "")
    legend: list[tuple[str, str, str]] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    empty: bool = False

    @property
    def plot_left(self) -> int:
        return LEFT

    @property
    def plot_bottom(self) -> int:
        return self.height - BOTTOM

    @property
    def plot_right(self) -> int:
        return self.width - RIGHT


def _day(day: date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def _scale(top: float) -> tuple[float, list[Tick]]:
    """A rounded maximum for the y axis and its ticks (0, half, max) in plot coordinates."""
    top = max(top, 1)
    magnitude = 10 ** (len(str(int(top))) - 1)
    nice = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= top)
    plot_h = HEIGHT - BOTTOM - TOP
    ticks = [Tick(HEIGHT - BOTTOM - plot_h * f, _number(nice * f)) for f in (0, 0.5, 1)]
    return nice, ticks


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _x_ticks(days: list[date], centre) -> list[Tick]:
    step = max(1, -(-len(days) // MAX_X_LABELS))
    return [Tick(centre(i), _day(day)) for i, day in enumerate(days) if i % step == 0]


def stacked_bars(title: str, series, rows: list[tuple[date, dict[str, int]]],
                 unit: str = "") -> Chart:
    """One bar per day, one segment per series (key, title, colour), bottom up."""
    days = [day for day, _v in rows]
    top, y_ticks = _scale(max((sum(v.values()) for _d, v in rows), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.8, 1)
    chart = Chart(title=title, y_ticks=y_ticks, legend=[(c, str(t), "") for _k, t, c in series],
                  x_ticks=_x_ticks(days, lambda i: LEFT + slot * (i + 0.5)))
    for i, (day, values) in enumerate(rows):
        y: float = HEIGHT - BOTTOM
        for key, name, colour in series:
            n = values.get(key, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            chart.rects.append(Rect(round(LEFT + slot * i + (slot - bar) / 2, 2), round(y, 2),
                                    round(bar, 2), round(h, 2), colour,
                                    f"{_day(day)} · {name}: {n}{unit}"))
    chart.empty = not chart.rects
    return chart


def lines(title: str, series, rows: list[tuple[date, dict[str, float | None]]],
          fmt=_number, key_on_hover: bool = False) -> Chart:
    """One line per series (key, title, colour) over the days; a missing value (None)
    breaks nothing: the point is left out. ``key_on_hover``: the legend shows each series'
    key on hover (the label chart: names in the legend, codes in their ``title``)."""
    days = [day for day, _v in rows]
    values = [v for _d, row in rows for v in row.values() if v is not None]
    top, y_ticks = _scale(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(days) - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + (step * i if len(days) > 1 else plot_w / 2), 2)

    chart = Chart(title=title, y_ticks=y_ticks,
                  legend=[(c, str(t), k if key_on_hover else "") for k, t, c in series],
                  x_ticks=_x_ticks(days, x))
    for key, name, colour in series:
        dots = [(x(i), round(HEIGHT - BOTTOM - plot_h * value / top, 2),
                 f"{_day(day)} · {name}: {fmt(value)}")
                for i, (day, row) in enumerate(rows) if (value := row.get(key)) is not None]
        chart.lines.append(Line(colour, str(name), " ".join(f"{a},{b}" for a, b, _t in dots),
                                dots))
    chart.empty = not values or not any(values)
    return chart


def hours(seconds: float | None) -> str:
    """An age for people: minutes under two hours, else hours, else days."""
    if seconds is None:
        return "-"
    if seconds < 7200:
        return _("%(n)d min") % {"n": round(seconds / 60)}
    if seconds < 172800:
        return _("%(n).1f h") % {"n": seconds / 3600}
    return _("%(n).1f days") % {"n": seconds / 86400}


def charts(figures: dict) -> dict[str, Chart]:
    """The five charts of the page from ``overview.overview()``'s figures."""
    queue = figures["queue_history"]
    # each label by its name in the active language, as the job list and the console show
    # it (the code: on hover in the legend and the figures table)
    label_series = [(code, display_name(code), PALETTE[i % len(PALETTE)])
                    for i, code in enumerate(figures["labels"].labels)]
    return {
        "volume": stacked_bars(_("Jobs per day by verdict"), VERDICT_SERIES, figures["volume"]),
        "queue_size": lines(_("Review queue: items waiting at the end of each day"),
                            [("size", _("items waiting"), "#c77c00")],
                            [(day, {"size": size}) for day, size, _o in queue]),
        "queue_age": lines(_("Review queue: age of the oldest item (hours)"),
                           [("age", _("oldest item, hours"), "#ba2121")],
                           [(day, {"age": None if age is None else round(age / 3600, 1)})
                            for day, _s, age in queue]),
        "labels": lines(_("Jobs per day carrying each label (the period's most frequent)"),
                        label_series, figures["labels"].by_day, key_on_hover=True),
        "errors": stacked_bars(_("Provider errors per day"), ERROR_SERIES,
                               figures["errors"].by_day),
    }


def moderator_bars(moderators: list[data.ModeratorFigures]) -> Chart:
    """Horizontal bars, one per moderator: approvals then rejections."""
    row_h, name_w = 30, 150
    height = TOP + BOTTOM + row_h * max(len(moderators), 1)
    most = max((m.total for m in moderators), default=0) or 1
    plot_w = WIDTH - name_w - RIGHT - 40
    chart = Chart(title=_("Decisions per moderator"), height=height, empty=not moderators,
                  legend=[("#81c784", _("approved"), ""), ("#e57373", _("rejected"), "")])
    for i, m in enumerate(moderators):
        y = TOP + row_h * i
        name = m.name or _("(deleted user)")
        chart.texts.append(Text(name_w - 6, y + row_h * 0.65, name, "end"))
        x = float(name_w)
        for count, colour, what in ((m.approved, "#81c784", _("approved")),
                                    (m.rejected, "#e57373", _("rejected"))):
            if count:
                w = plot_w * count / most
                chart.rects.append(Rect(round(x, 2), y + 3, round(w, 2), row_h - 6, colour,
                                        f"{name} · {what}: {count}"))
                x += w
        chart.texts.append(Text(round(x + 4, 2), y + row_h * 0.65, str(m.total), "start"))
    return chart


def period_from_query(params) -> tuple[data.Period, dict[str, str]]:
    """The period the query string asks for (``days`` = 7/30/90, or ``from``/``to`` as
    YYYY-MM-DD) and the form's values; anything unreadable falls back to 30 days."""
    first = _date(params.get("from"))
    last = _date(params.get("to"))
    if first or last:
        p = data.period(first=first, last=last)
        return p, {"from": p.first.isoformat(), "to": p.last.isoformat(), "days": ""}
    try:
        days = int(params.get("days") or data.DEFAULT_DAYS)
    except ValueError:
        days = data.DEFAULT_DAYS
    days = days if days in data.PERIODS else data.DEFAULT_DAYS
    p = data.period(days=days)
    return p, {"from": p.first.isoformat(), "to": p.last.isoformat(), "days": str(days)}


def _date(value) -> date | None:
    try:
        return parse_date(str(value)) if value else None
    except ValueError:
        return None


class OverviewMixin:
    """Adds ``overview/`` to a Job ModelAdmin (staff with ``view_job``)."""

    def get_urls(self):
        urls = [path("overview/", self.admin_site.admin_view(self.overview_view),
                     name="moderation_job_overview")]
        return urls + super().get_urls()

    def overview_view(self, request):
        if not request.user.has_perm(VIEW):
            raise PermissionDenied
        p, form = period_from_query(request.GET)
        figures = data.overview(p)
        verdict_titles = {key: title for key, title, _c in VERDICT_SERIES}
        context = {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": _("Moderation overview"), "form": form, "periods": data.PERIODS,
            "figures": figures, "charts": charts(figures),
            "moderator_chart": moderator_bars(figures["moderators"]),
            "queue_oldest": hours(figures["queue_now"].oldest_seconds),
            "queue_history": [(day, size, hours(age))
                              for day, size, age in figures["queue_history"]],
            "verdict_columns": [(key, verdict_titles[key]) for key in data.VERDICTS],
            "volume_rows": [(day, [counts[key] for key in data.VERDICTS])
                            for day, counts in figures["volume"]],
            "label_columns": [(code, display_name(code)) for code in figures["labels"].labels],
            "label_rows": [(day, [counts[name] for name in figures["labels"].labels])
                           for day, counts in figures["labels"].by_day],
            "error_rows": [(day, [counts[key] for key, _t, _c in ERROR_SERIES])
                           for day, counts in figures["errors"].by_day],
            "error_columns": [title for _k, title, _c in ERROR_SERIES],
            "jobs_total": sum(figures["volume_totals"].values()),
            "blocked_total": (figures["volume_totals"]["auto_block"]
                              + figures["volume_totals"]["rejected"]),
            "can_review": request.user.has_perm("moderation.review_job"),
            "queue_alerts": alerts.active_alerts(),
        }
        return TemplateResponse(request, "moderation/admin/overview.html", context)


__all__ = ["OverviewMixin", "charts", "period_from_query"]
