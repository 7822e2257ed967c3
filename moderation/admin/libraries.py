"""Admin for the hash libraries: the allow and block lists, CSV import and export.

CSV is the format hash-sharing tools (ThreatExchange and its ``hma``/``tx`` tools) read and
write: one hex PDQ hash per line, optionally followed by ``label``, ``note`` and
``list_type`` columns. An import reports the lines it could not read and adds the rest;
hashes already on their list are left alone. See docs/libraries.md.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .. import libraries
from ..conf import moderation_settings
from ..library_csv import csv_rows, import_entries, parse_csv
from ..models import HashEntry

MAX_UPLOAD_BYTES = 32 * 1024 * 1024  # ~450 000 lines
MAX_REPORTED = 20

CHANGE_LIST = "moderation/admin/hashentry_change_list.html"
IMPORT_FORM = "moderation/admin/hashentry_import.html"


def threshold_text() -> str:
    local = ((moderation_settings.PROVIDERS or {}).get("local") or {}).get("OPTIONS") or {}
    source = (_("the local provider's pdq_threshold option") if "pdq_threshold" in local
              else "MODERATION['LIBRARY_MATCH_THRESHOLD']")
    precheck = _("on") if moderation_settings.LIBRARY_PRECHECK else _("off")
    return _("An image matches an entry within %(bits)s bits of PDQ Hamming distance "
             "(%(source)s); pre-check before remote providers: %(precheck)s.") % {
        "bits": libraries.match_threshold(), "source": source, "precheck": precheck}


def csv_response(queryset, filename: str = "hash-library.csv") -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_rows(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))
    list_type = forms.ChoiceField(label=_("List type"), choices=HashEntry.ListType.choices,
                                  initial="block",
                                  help_text=_("for lines without a list_type column"))
    label = forms.CharField(label=_("Label"), max_length=100, required=False,
                            help_text=_("for lines without a label (block list: reported as "
                                        "<label>_lib)"))
    note = forms.CharField(label=_("Note"), max_length=500, required=False,
                           help_text=_("for lines without a note, e.g. where the list came from"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("at most %(mb)d MB")
                                        % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)})
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(_("the file is not UTF-8 text")) from exc


# --- the admin ----------------------------------------------------------------------------------


class HashEntryForm(forms.ModelForm):
    class Meta:
        model = HashEntry
        fields = ("list_type", "label", "pdq", "quality", "note")

    def clean_pdq(self):
        value = self.cleaned_data["pdq"].strip().lower()
        if not libraries.is_pdq(value):
            raise forms.ValidationError(_("a PDQ hash is 64 hex digits"))
        return value


class SourceFilter(admin.SimpleListFilter):
    title = _("source")
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return (("feedback", _("moderator feedback")), ("imported", _("imported or typed")))

    def queryset(self, request, queryset):
        if self.value() == "feedback":
            return queryset.filter(source_job__isnull=False)
        if self.value() == "imported":
            return queryset.filter(source_job__isnull=True)
        return queryset


class HashLibraryAdmin(admin.ModelAdmin):
    form = HashEntryForm
    list_display = ("thumb", "pdq_short", "list_type", "label", "quality", "note",
                    "created_by", "source_job_link", "created_at")
    list_display_links = ("pdq_short",)
    list_filter = ("list_type", SourceFilter, "label", "created_at")
    list_select_related = ("created_by",)
    search_fields = ("=pdq", "label", "note")
    readonly_fields = ("thumb", "source_job_link", "source_frame", "created_by", "created_at")
    fields = ("thumb", "list_type", "label", "pdq", "quality", "note", "source_job_link",
              "created_by", "created_at")
    actions = ("export_selected",)
    list_per_page = 100

    change_list_template = CHANGE_LIST

    @admin.display(description=_("image"))
    def thumb(self, obj):
        if not obj or not obj.source_frame_id:
            return "-"
        url = reverse("moderation:frame-thumbnail", args=[obj.source_frame_id])
        return format_html('<a href="{}" target="_blank"><img src="{}" loading="lazy" alt="" '
                           'style="max-width:64px;max-height:64px"></a>', url, url)

    @admin.display(description="PDQ", ordering="pdq")
    def pdq_short(self, obj):
        return f"{obj.pdq[:16]}…"

    @admin.display(description=_("source job"), ordering="source_job")
    def source_job_link(self, obj):
        if not obj or not obj.source_job_id:
            return "-"
        url = reverse("admin:moderation_job_change", args=[obj.source_job_id])
        return format_html('<a href="{}">#{}</a>', url, obj.source_job_id)

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def changelist_view(self, request, extra_context=None):
        query = request.GET.copy()
        query.pop("p", None)
        extra = {
            "subtitle": threshold_text(),
            "can_import": self.has_add_permission(request),
            "can_export": self.has_change_permission(request),
            "export_query": f"?{query.urlencode()}" if query else "",
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="moderation_hashentry_import"),
            path("export/", wrap(self.export_view), name="moderation_hashentry_export"),
            *super().get_urls(),
        ]

    @admin.action(description=_("Export selected entries as CSV"), permissions=["change"])
    def export_selected(self, request, queryset):
        return csv_response(queryset)

    def export_view(self, request):
        """Every entry the changelist shows with the same filters and search, as CSV."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        return csv_response(changelist.get_queryset(request))

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            parsed = parse_csv(data["file"], list_type=data["list_type"], label=data["label"],
                               note=data["note"])
            added, present = import_entries(parsed, actor=request.user)
            self.message_user(request, _(
                "%(added)d entries added, %(present)d already on their list, %(repeated)d "
                "repeated lines, %(skipped)d lines skipped.") % {
                    "added": added, "present": present, "repeated": parsed.duplicates,
                    "skipped": len(parsed.errors)}, messages.SUCCESS)
            for number, problem in parsed.errors[:MAX_REPORTED]:
                self.message_user(request, _("line %(number)s: %(problem)s")
                                  % {"number": number, "problem": problem}, messages.WARNING)
            if len(parsed.errors) > MAX_REPORTED:
                self.message_user(request, _("... and %(n)d more lines that could not be read")
                                  % {"n": len(parsed.errors) - MAX_REPORTED}, messages.WARNING)
            return HttpResponseRedirect(reverse("admin:moderation_hashentry_changelist"))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": _("Import hash entries"), "form": form,
                   "threshold_text": threshold_text()}
        return TemplateResponse(request, IMPORT_FORM, context)


admin.site.register(HashEntry, HashLibraryAdmin)
