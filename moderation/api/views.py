"""API views: thin, the work is in the pipeline, feedback and model functions."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.decorators import method_decorator
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import claims, pipeline, review
from ..feedback import request_feedback
from ..models import AudioSlice, Frame, HashEntry, Job
from ..operations.stats import label_counts
from ..providers import UnknownProvider, get_provider
from ..storage import discard_on_failure
from . import serializers as s
from .filters import JOB_FILTERS, filter_jobs, parse_moment
from .outage import OutageAware
from .permissions import (
    CanModerate,
    CanReview,
    CanSendFeedback,
    CanViewJobs,
    LibraryPermissions,
)
from .schema import OpenApiParameter, OpenApiTypes, extend_schema

#: Longest a moderate request may wait for its result (it holds a server thread).
MAX_WAIT = 30.0


class Pages(PageNumberPagination):
    """Page links under ``PUBLIC_BASE_URL`` (or relative), never from the ``Host`` header."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_next_link(self) -> str | None:
        return _rebased(super().get_next_link())

    def get_previous_link(self) -> str | None:
        return _rebased(super().get_previous_link())


def _rebased(link: str | None) -> str | None:
    if link is None:
        return None
    parts = urlsplit(link)
    return s.public_url(parts.path + (f"?{parts.query}" if parts.query else ""))


SINCE = OpenApiParameter("since", OpenApiTypes.DATETIME,
                         description="ISO date or date-time; default: 30 days ago")
UNTIL = OpenApiParameter("until", OpenApiTypes.DATETIME, description="default: now")


@extend_schema(parameters=JOB_FILTERS)
class JobViewSet(OutageAware, viewsets.ReadOnlyModelViewSet):
    """Jobs, newest first; filters in the query string. Frames and slices are paginated
    sub-resources, so a 2-hour video is never one response."""

    permission_classes = [CanViewJobs]
    pagination_class = Pages
    queryset = Job.objects.select_related("content_type")

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = filter_jobs(queryset, self.request.query_params)
        return queryset

    def get_serializer_class(self):
        return s.JobSerializer if self.action == "list" else s.JobDetailSerializer

    @extend_schema(parameters=[], responses=s.FrameSerializer(many=True))
    @action(detail=True)
    def frames(self, request, pk=None):
        job = self.get_object()
        frames = Frame.objects.filter(job=job).prefetch_related("labels").order_by("offset", "id")
        page = self.paginate_queryset(frames)
        data = s.FrameSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(parameters=[], responses=s.AudioSliceSerializer(many=True))
    @action(detail=True)
    def slices(self, request, pk=None):
        job = self.get_object()
        parts = AudioSlice.objects.filter(job=job).order_by("start", "id")
        page = self.paginate_queryset(parts)
        data = s.AudioSliceSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(parameters=[], request=s.DecisionSerializer,
                   responses={200: s.JobDetailSerializer, 400: OpenApiTypes.OBJECT,
                              409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], permission_classes=[CanReview])
    def decision(self, request, pk=None):
        """Approve (show) or reject (block) a finished job; reversible, audited. Like the
        console, it respects claims: a job another moderator is reviewing answers 409. An
        unknown ``reason_code``, or none on a rejection when one is required, answers 400."""
        job = self.get_object()
        body = s.DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job = review.decide(job, body.validated_data["decision"], request.user,
                                body.validated_data.get("reason", ""),
                                body.validated_data.get("reason_code", ""))
        except review.ReasonError as exc:
            raise ValidationError({"reason_code": str(exc)}) from exc
        except (ValueError, claims.ClaimedByOther) as exc:  # unfinished, or in someone's hands
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(s.JobDetailSerializer(job, context={"request": request}).data)

    @extend_schema(parameters=[], request=None,
                   responses={200: s.JobDetailSerializer, 403: OpenApiTypes.OBJECT,
                              409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], permission_classes=[CanReview])
    def undo(self, request, pk=None):
        """Undo the last decision on the job: by the moderator who took it (or a
        superuser), within UNDO_SECONDS. The job returns to review, its content's
        visibility as before. 403 for another moderator's decision; 409 when there is
        nothing to undo or the window has passed. Feedback already sent is not unsent."""
        job = self.get_object()
        try:
            job = review.undo_decision(job, request.user)
        except review.CannotUndo as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(s.JobDetailSerializer(job, context={"request": request}).data)

    @extend_schema(parameters=[], request=s.FeedbackSerializer,
                   responses={202: s.FeedbackStatusSerializer, 409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], permission_classes=[CanSendFeedback])
    def feedback(self, request, pk=None):
        """Queue feedback to the job's provider (allow/block lists); see its status later
        in the admin. A job another moderator is reviewing answers 409, like a decision."""
        job = self.get_object()
        body = s.FeedbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            feedback = request_feedback(job, data["decision"], frame_ids=data.get("frame_ids"),
                                        scenes=data.get("scenes"), note=data.get("note", ""),
                                        actor=request.user)
        except claims.ClaimedByOther as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(s.FeedbackStatusSerializer(feedback).data,
                        status=status.HTTP_202_ACCEPTED)


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class ModerateView(OutageAware, APIView):
    """Moderate an uploaded file or a URL on demand. The job is queued for the workers;
    ``?wait=N`` (up to 30 s) waits for its result when it is quick. 201 when finished,
    202 while it is still being worked on.

    The upload is stored before the job row; the view runs its own transaction (even
    under ``ATOMIC_REQUESTS``) inside ``discard_on_failure``, so a transaction that fails,
    at commit too, leaves no orphaned file (and the client gets a 503)."""

    permission_classes = [CanModerate]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={"multipart/form-data": s.ModerateSerializer,
                 "application/json": s.ModerateSerializer},
        parameters=[OpenApiParameter("wait", OpenApiTypes.NUMBER,
                                     description="seconds to wait for the result (max 30)")],
        responses={201: s.JobDetailSerializer, 202: s.JobDetailSerializer},
    )
    def post(self, request):
        body = s.ModerateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        wait = _wait_seconds(request.query_params.get("wait"))
        provider = data.get("provider") or None
        try:
            get_provider(provider)
        except UnknownProvider as exc:
            raise ValidationError({"provider": str(exc)}) from exc
        upload = data.get("file")
        try:
            with discard_on_failure(), transaction.atomic():
                job = pipeline.create_adhoc_job(
                    kind=data.get("kind"), name=upload.name if upload else "",
                    content=upload.read() if upload else None, url=data.get("url") or "",
                    provider=provider, scenes=data.get("scenes"),
                )
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        deadline = time.monotonic() + wait
        while not job.is_finished and time.monotonic() < deadline:
            time.sleep(0.2)
            job.refresh_from_db()
        code = status.HTTP_201_CREATED if job.is_finished else status.HTTP_202_ACCEPTED
        return Response(s.JobDetailSerializer(job, context={"request": request}).data,
                        status=code)


def _wait_seconds(value: str | None) -> float:
    if value in (None, ""):
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise ValidationError({"wait": "a number of seconds"}) from None
    if not 0 <= seconds <= MAX_WAIT:
        raise ValidationError({"wait": f"between 0 and {MAX_WAIT:g} seconds"})
    return seconds


def _period(params) -> tuple:
    now = timezone.now()
    since = parse_moment(params["since"], "since") if params.get("since") else (
        now - timedelta(days=30))
    until = parse_moment(params["until"], "until") if params.get("until") else now
    return since, until


class LabelCountsView(OutageAware, APIView):
    """How many finished jobs carried each label in a period, most frequent first."""

    permission_classes = [CanViewJobs]

    @extend_schema(parameters=[SINCE, UNTIL], responses=s.LabelCountSerializer(many=True))
    def get(self, request):
        since, until = _period(request.query_params)
        jobs = Job.objects.filter(created_at__gte=since, created_at__lt=until)
        rows = [{"label": label, "jobs": n} for label, n in label_counts(jobs)]
        return Response(s.LabelCountSerializer(rows, many=True).data)


class TimelineView(OutageAware, APIView):
    """Jobs per day and suggestion in a period (a chart's data)."""

    permission_classes = [CanViewJobs]

    @extend_schema(parameters=[SINCE, UNTIL], responses=s.TimelineSerializer(many=True))
    def get(self, request):
        since, until = _period(request.query_params)
        rows = (Job.objects.filter(created_at__gte=since, created_at__lt=until)
                .annotate(day=TruncDate("created_at")).values("day", "suggestion")
                .annotate(jobs=Count("id")).order_by("day", "suggestion"))
        return Response(s.TimelineSerializer(rows, many=True).data)


class HashEntryViewSet(OutageAware, mixins.CreateModelMixin, mixins.UpdateModelMixin,
                       mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Allow- and block-list entries (PDQ hashes) of the similar-image libraries."""

    permission_classes = [LibraryPermissions]
    pagination_class = Pages
    serializer_class = s.HashEntrySerializer
    queryset = HashEntry.objects.order_by("-created_at", "-id")

    @extend_schema(parameters=[OpenApiParameter("list_type", OpenApiTypes.STR,
                                                enum=["allow", "block"])])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        list_type = self.request.query_params.get("list_type")
        if self.action == "list" and list_type:
            if list_type not in ("allow", "block"):
                raise ValidationError({"list_type": "allow or block"})
            queryset = queryset.filter(list_type=list_type)
        return queryset

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


