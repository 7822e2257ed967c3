"""Serializers: jobs (list and detail), frames, slices, decisions, feedback, on-demand
moderation and hash library entries."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from ..conf import moderation_settings
from ..models import (
    AudioSlice,
    Decision,
    Frame,
    FrameLabel,
    HashEntry,
    Job,
    MediaKind,
    Suggestion,
)
from ..pipeline.progress import UNITS, describe
from ..validators import StreamURLValidator


def public_url(path: str) -> str:
    """``path`` (a site path from ``reverse``) under ``PUBLIC_BASE_URL`` when that is set,
    else the path itself, which a client resolves against the URL it called. Never built
    from the request's ``Host`` header: a client chooses that header, and with a permissive
    ``ALLOWED_HOSTS`` a forged one would hand out links to another site."""
    base = str(moderation_settings.PUBLIC_BASE_URL or "").rstrip("/")
    return f"{base}{path}" if base else path


class JobProgressSerializer(serializers.Serializer):
    """How far a running job has got; null once it is finished, or before its provider
    said (remote providers mostly do not)."""

    done = serializers.FloatField(help_text="seconds of the media (or frames) analysed")
    total = serializers.FloatField(help_text="the whole, in the same unit; 0 when unknown")
    unit = serializers.ChoiceField(choices=UNITS)
    percent = serializers.IntegerField(allow_null=True, help_text="null when total is unknown")

    # None renders as null (the field is allow_null); DRF's stub says a dict is always returned.
    def to_representation(self, job: Job) -> dict | None:  # type: ignore[override]
        return None if job.is_finished else describe(job.progress)


class JobSerializer(serializers.ModelSerializer):
    content_type = serializers.SerializerMethodField()
    progress = JobProgressSerializer(source="*", read_only=True, allow_null=True)
    # Blank until the job is decided; declared so that the schema allows "" (BlankEnum).
    suggestion = serializers.ChoiceField(choices=Suggestion.choices, allow_blank=True,
                                         read_only=True)
    decision = serializers.ChoiceField(choices=Decision.choices, allow_blank=True,
                                       read_only=True)

    class Meta:
        model = Job
        fields = ["id", "content_type", "object_id", "field_name", "file_name", "media_kind",
                  "provider", "status", "suggestion", "risk_level", "labels", "review_state",
                  "decision", "error_code", "error_message", "attempts", "progress",
                  "created_at", "completed_at"]
        read_only_fields = fields

    def get_content_type(self, job: Job) -> str | None:
        """``app_label.model`` of the moderated object; null for ad-hoc jobs."""
        ct = job.content_type
        return f"{ct.app_label}.{ct.model}" if ct else None


class JobDetailSerializer(JobSerializer):
    frames_url = serializers.SerializerMethodField()
    slices_url = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "scenes", "biz_type", "data_id",
                  "provider_task_id", "frame_summary", "audio_summary", "submitted_at",
                  "frames_url", "slices_url"]
        read_only_fields = fields

    def get_frames_url(self, job: Job) -> str:
        return public_url(reverse("moderation-api:job-frames", args=[job.pk]))

    def get_slices_url(self, job: Job) -> str:
        return public_url(reverse("moderation-api:job-slices", args=[job.pk]))


class FrameLabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = FrameLabel
        fields = ["label", "confidence", "risk_level", "service", "scene", "description"]
        read_only_fields = fields


class FrameSerializer(serializers.ModelSerializer):
    labels = FrameLabelSerializer(many=True, read_only=True)
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Frame
        fields = ["id", "offset", "risk_level", "labels", "thumbnail_url"]
        read_only_fields = fields

    def get_thumbnail_url(self, frame: Frame) -> str | None:
        """The permission-checked evidence view (view_job), never a public file."""
        if not frame.thumbnail:
            return None
        return public_url(reverse("moderation:frame-thumbnail", args=[frame.pk]))


class SliceLabelSerializer(serializers.Serializer):
    # A declared field (the metaclass takes it off the class), not Field.label: stubs differ.
    label = serializers.CharField()  # type: ignore[assignment]
    confidence = serializers.FloatField(required=False)
    risk_level = serializers.CharField(required=False)
    service = serializers.CharField(required=False, help_text="asr, kws or asr+kws")
    description = serializers.CharField(required=False)


class AudioSliceSerializer(serializers.ModelSerializer):
    labels = SliceLabelSerializer(many=True, read_only=True)
    risk_words = serializers.ListField(child=serializers.CharField(), read_only=True)
    clip_url = serializers.SerializerMethodField()
    language = serializers.CharField(
        read_only=True, help_text='language the recogniser detected ("en", "zh"), "" if unknown')
    language_confidence = serializers.FloatField(
        read_only=True, allow_null=True, help_text="its probability 0..1, null if unknown")
    language_uncertain = serializers.BooleanField(
        read_only=True, help_text="true when the transcript is not to be trusted by the rules: "
        "language detected with a probability under 0.5, or one the text rules do not read")

    class Meta:
        model = AudioSlice
        fields = ["id", "start", "end", "text", "labels", "risk_words", "risk_level",
                  "language", "language_confidence", "language_uncertain", "clip_url"]
        read_only_fields = fields

    def get_clip_url(self, part: AudioSlice) -> str | None:
        if not part.clip:
            return None
        return public_url(reverse("moderation:slice-clip", args=[part.pk]))


#: The two decisions a moderator (or a script) can take.
REVIEW_DECISIONS = [(Decision.APPROVED.value, Decision.APPROVED.label),
                    (Decision.REJECTED.value, Decision.REJECTED.label)]


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=REVIEW_DECISIONS)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                   help_text="a free-text note")
    reason_code = serializers.CharField(
        required=False, allow_blank=True, max_length=50,
        help_text='a policy category of MODERATION["REASONS"] ("spam", "nudity", ...); '
        "required to reject when REQUIRE_REJECT_REASON is on")


class FeedbackSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=REVIEW_DECISIONS)
    frame_ids = serializers.ListField(child=serializers.IntegerField(min_value=1),
                                      required=False, max_length=10_000,
                                      help_text="frames of the job; empty: the whole job")
    scenes = serializers.ListField(child=serializers.CharField(max_length=50),
                                   required=False, max_length=50)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class FeedbackStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job = serializers.IntegerField(source="job_id")
    provider = serializers.CharField()
    decision = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class ModerateSerializer(serializers.Serializer):
    """One of ``file`` (multipart upload) or ``url`` (a video file or live stream: http(s),
    rtmp(s), rtsp or srt; a literal private address is refused here, names when fetched)."""

    file = serializers.FileField(required=False)
    url = serializers.CharField(required=False, max_length=2000,
                                validators=[StreamURLValidator()])
    kind = serializers.ChoiceField(choices=MediaKind.choices, required=False)
    provider = serializers.CharField(required=False, max_length=50)
    scenes = serializers.ListField(child=serializers.CharField(max_length=50),
                                   required=False, max_length=50)

    def validate(self, attrs):
        if bool(attrs.get("file")) == bool(attrs.get("url")):
            raise serializers.ValidationError("give exactly one of file or url")
        return attrs


class LabelCountSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field, as above
    jobs = serializers.IntegerField()


class TimelineSerializer(serializers.Serializer):
    day = serializers.DateField()
    suggestion = serializers.CharField(allow_blank=True)
    jobs = serializers.IntegerField()


class HashEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = HashEntry
        fields = ["id", "list_type", "label", "pdq", "quality", "note", "source_job",
                  "created_by", "created_at"]
        read_only_fields = ["id", "source_job", "created_by", "created_at"]

    def validate_pdq(self, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise serializers.ValidationError("a PDQ hash is 64 hex digits")
        return value

    def validate(self, attrs):
        list_type = attrs.get("list_type", getattr(self.instance, "list_type", None))
        pdq = attrs.get("pdq", getattr(self.instance, "pdq", None))
        clash = HashEntry.objects.filter(list_type=list_type, pdq=pdq)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"pdq": "already in this list"})
        return attrs
