"""Evidence a moderator can read (issue 14, item 3): label names with codes on hover, OCR
boxes kept and drawn, text-only blur, segments of flagged frames, a clean video's summary,
the wellness blur on the job list and page, ad-hoc jobs, and flat query counts."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from moderation.admin.evidence import (
    PDQ_NEAR,
    frame_overlay,
    group_segments,
    is_text_only,
    label_chip,
    pdq_distance,
)
from moderation.labels import label_name
from moderation.models import Frame, FrameLabel, Job, ModeratorPreference
from moderation.pipeline.ingest import ingest
from moderation.providers.local.text_boxes import text_boxes
from moderation.providers.result import Frame as ResultFrame
from moderation.providers.result import Label, Result
from tests.pipeline.test_review import make_job, moderator

pytestmark = pytest.mark.django_db

LIST = "admin:moderation_job_changelist"
CONTACT = "pt_toDirectContact_tii"


def change_url(job):
    return reverse("admin:moderation_job_change", args=[job.pk])


@pytest.fixture
def viewer():
    return moderator("viewer", "view_job", "review_job")


def frames_of(job):
    return list(Frame.objects.filter(job=job).prefetch_related("labels"))


# --- segments: a plain function ------------------------------------------------------------


def fake(offset, labels, pdq="", thumbnail="t.jpg", risk="medium"):
    return SimpleNamespace(offset=offset, pdq=pdq, thumbnail=thumbnail, risk_level=risk,
                           labels_=tuple(labels), pk=int(offset * 10))


def by_attr(frame):
    return frame.labels_


def test_segments_group_consecutive_frames_with_the_same_labels():
    frames = [fake(t, ["pt_qrCode"]) for t in range(0, 14)]  # 14 seconds of one QR code
    frames += [fake(20, ["pt_qrCode"]), fake(21, ["pt_qrCode"])]  # gap of 6 s: new segment
    frames += [fake(22, [CONTACT]), fake(23, [CONTACT, "pt_qrCode"])]  # other labels
    segments = group_segments(reversed(frames), interval=1.0, labels_of=by_attr,
                              duration=30.0)
    assert [(s.first, s.last, s.count, s.labels) for s in segments] == [
        (0, 13, 14, ("pt_qrCode",)), (20, 21, 2, ("pt_qrCode",)), (22, 22, 1, (CONTACT,)),
        (23, 23, 1, (CONTACT, "pt_qrCode")),
    ]
    first = segments[0]
    assert first.left == 0 and first.width == pytest.approx(14 / 30 * 100, abs=0.01)
    assert segments[1].left == pytest.approx(20 / 30 * 100, abs=0.01)
    # expanded: at most SEGMENT_THUMBS others, the rest counted
    assert len(first.others) == 12 and first.hidden == 1
    assert first.representative not in first.others


def test_one_missed_sample_joins_the_run_two_do_not():
    joined = group_segments([fake(0, "a"), fake(2, "a")], interval=1.0, labels_of=by_attr)
    split = group_segments([fake(0, "a"), fake(3, "a")], interval=1.0, labels_of=by_attr)
    assert len(joined) == 1 and len(split) == 2
    # a sampling interval of 5 s: frames 10 s apart are one run
    assert len(group_segments([fake(0, "a"), fake(10, "a")], interval=5.0,
                              labels_of=by_attr)) == 1


def test_different_pictures_split_a_run_by_pdq():
    zero, near, far = "0" * 64, "0" * 62 + "ff", "f" * 40 + "0" * 24
    assert pdq_distance(zero, near) == 8 and pdq_distance(zero, far) == 160 > PDQ_NEAR
    assert pdq_distance(zero, "") is None
    same = group_segments([fake(0, "a", zero), fake(1, "a", near)], labels_of=by_attr)
    cut = group_segments([fake(0, "a", zero), fake(1, "a", far)], labels_of=by_attr)
    assert len(same) == 1 and len(cut) == 2


def test_representative_is_the_worst_frame_with_a_thumbnail():
    frames = [fake(0, "a", thumbnail="", risk="high"), fake(1, "a", risk="low"),
              fake(2, "a", risk="medium"), fake(3, "a", risk="medium")]
    (segment,) = group_segments(frames, labels_of=by_attr)
    assert segment.representative.offset == 2 and segment.risk_level == "high"


# --- label names -------------------------------------------------------------------------------


def test_label_chip_shows_the_name_and_the_code_on_hover():
    chip = label_chip("pt_qrCode", 87.4, "medium")
    assert chip == ('<span class="mod-label mod-risk-medium" title="pt_qrCode">'
                    'a QR code 87%</span>')
    with translation.override("zh-hans"):
        assert label_name("pt_qrCode") != "a QR code"
        assert label_name("pt_qrCode") in label_chip("pt_qrCode")


def test_job_list_and_page_show_names_with_codes_on_hover(client, viewer):
    job = make_job("medium", frames=3, flagged_every=1, labels=("pt_qrCode",))
    client.force_login(viewer)
    listing = client.get(reverse(LIST)).content.decode()
    assert 'title="pt_qrCode">a QR code</span>' in listing
    page = client.get(change_url(job)).content.decode()
    assert 'title="pt_qrCode">a QR code 8' in page  # the segment's chips, with confidence
    assert ">pt_qrCode<" not in page and ">pt_qrCode " not in page  # no bare code shown


# --- OCR boxes: kept by the engine's helper, stored by ingest, drawn on the page -----------


DETAILS = {
    "size": [400, 200],
    "ocr": [
        {"text": "Big summer sale", "score": 0.98, "box": [[10, 10], [210, 10], [210, 40],
                                                          [10, 40]]},
        {"text": "加微信 abc123 领取", "score": 0.95, "box": [[20, 100], [380, 100],
                                                         [380, 150], [20, 150]]},
    ],
    "text_hits": [{"label": CONTACT, "confidence": 90, "risk_words": ["加微信"],
                   "rule": "contact.wechat"}],
}


def test_text_boxes_are_fractions_of_the_frame_and_mark_the_flagged_line():
    boxes = text_boxes(DETAILS)
    assert [b["labels"] for b in boxes] == [[], [CONTACT]]
    assert boxes[0]["box"] == [[0.025, 0.05], [0.525, 0.05], [0.525, 0.2], [0.025, 0.2]]
    assert text_boxes({"ocr": [], "size": [1, 1]}) == [] and text_boxes({}) == []


CONTACT_LABEL = Label(CONTACT, 90, "medium", "local", "ad")


def store(job_kwargs=None, labels=(CONTACT_LABEL,), details=DETAILS):
    job = Job.objects.create(media_kind="image", provider="local", status="in_progress",
                             file_name="uploads/ad.png", **(job_kwargs or {}))
    frame = ResultFrame(offset=0.0, risk_level="medium", labels=list(labels),
                        image=b"\xff\xd8\xff\xe0 fake jpeg bytes",
                        text_boxes=text_boxes(details))
    ingest(job, Result(risk_level="medium", labels=list(labels), frames=[frame]))
    return job


def test_ingest_stores_the_boxes_and_the_result_round_trips_them():
    job = store()
    row = Frame.objects.get(job=job)
    assert row.text_boxes[1]["labels"] == [CONTACT]
    again = Result.from_dict(job.result)
    assert again.frames[0].text_boxes == row.text_boxes


def test_text_only_frame_blurs_only_its_flagged_regions(client, viewer):
    job = store()
    (frame,) = frames_of(job)
    boxes = frame_overlay(frame)
    assert [b.flagged for b in boxes] == [False, True]
    assert (boxes[1].left, boxes[1].top, boxes[1].width, boxes[1].height) == (5.0, 50.0,
                                                                             90.0, 25.0)
    assert is_text_only([CONTACT]) and not is_text_only([CONTACT, "pt_qrCode"])
    client.force_login(viewer)
    page = client.get(change_url(job)).content.decode()
    thumb = re.search(r'<span class="(mod-thumb mod-evidence[^"]*)" data-frame', page)
    assert thumb and set(thumb.group(1).split()) >= {"mod-text-only", "mod-blurred"}
    assert page.count('class="mod-box mod-box-flagged"') == 1
    assert page.count('class="mod-box"') == 1
    assert "left:5.00%;top:50.00%;width:90.00%;height:25.00%" in page


def test_a_qr_code_with_text_blurs_the_whole_picture(client, viewer):
    job = store(labels=(Label(CONTACT, 90, "medium"), Label("pt_qrCode", 100, "medium")))
    client.force_login(viewer)
    page = client.get(change_url(job)).content.decode()
    thumb = re.search(r'<span class="(mod-thumb mod-evidence[^"]*)" data-frame', page)
    assert "mod-blurred" in thumb.group(1) and "mod-text-only" not in thumb.group(1)


# --- the job page -------------------------------------------------------------------------


def test_fourteen_similar_frames_are_one_segment(client, viewer):
    job = make_job("medium", frames=40, flagged_every=1)
    Frame.objects.filter(job=job, offset__gte=14, offset__lt=30).update(risk_level="none")
    client.force_login(viewer)
    page = client.get(change_url(job)).content.decode()
    items = re.findall(r'<li id="mod-seg-\d+"[^>]*data-count="(\d+)"', page)
    assert items == ["14", "10"]
    assert page.count('class="mod-seg mod-risk-medium"') == 2
    assert "0.0\u201313.0 s" in page and "30.0\u201339.0 s" in page  # en dash
    assert "2 segments" in page and "Flagged frames (24)" in page
    # the console's job page: the same segments on a timeline whose bars seek the player
    review = client.get(reverse("admin:moderation_job_review", args=[job.pk])).content.decode()
    bars = re.findall(r'<button type="button" class="mod-seek mod-seg mod-risk-medium" '
                      r'data-offset="([\d.]+)" data-count="(\d+)"', review)
    assert bars == [("0.000", "14"), ("30.000", "10")]


def test_a_clean_video_shows_a_summary_not_empty_tiles(client, viewer):
    job = make_job("none", frames=60, pending=False, labels=())
    client.force_login(viewer)
    page = client.get(change_url(job)).content.decode()
    assert "60 frames analysed: nothing flagged." in page
    assert "no thumbnail" not in page and "mod-seg-item" not in page
    review = client.get(reverse("admin:moderation_job_review", args=[job.pk]))
    body = review.content.decode()
    assert "60 frames analysed: nothing flagged." in body
    assert body.count("no thumbnail") == 0
    everything = client.get(reverse("admin:moderation_job_review", args=[job.pk])
                            + "?frames=all").content.decode()
    assert everything.count('class="mod-frame ') == 60  # still there on request


def test_ad_hoc_jobs_say_so(client, viewer):
    job = make_job("medium", frames=1, flagged_every=1)
    assert job.content_type_id is None
    client.force_login(viewer)
    for body in (client.get(reverse(LIST)).content.decode(),
                 client.get(change_url(job)).content.decode()):
        assert "ad-hoc upload" in body and "(deleted)" not in body


# --- the wellness preference ---------------------------------------------------------------


def blurred_thumbs(body: str) -> int:
    return len(re.findall(r'class="mod-thumb[^"]*mod-blurred', body))


def test_list_and_page_blur_flagged_images_until_the_preference_says_otherwise(client,
                                                                                viewer):
    flagged = make_job("medium", frames=2, flagged_every=1)
    make_job("none", frames=1, pending=False, labels=())
    Frame.objects.filter(job__risk_level="none").update(thumbnail="frames/clean.jpg")
    client.force_login(viewer)
    listing = client.get(reverse(LIST)).content.decode()
    assert blurred_thumbs(listing) == 1  # the flagged job's, not the clean one's
    assert 'class="mod-thumb"' in listing
    page = client.get(change_url(flagged)).content.decode()
    assert blurred_thumbs(page) >= 2 and "data-mod-mute" in page
    # one preference for the queue, the list and the job page
    response = client.post(reverse("admin:moderation_job_preferences"),
                           {"reveal_flagged": "1", "next": reverse(LIST)})
    assert response.status_code == 302 and response["Location"] == reverse(LIST)
    assert ModeratorPreference.objects.get(user=viewer).reveal_flagged
    assert blurred_thumbs(client.get(reverse(LIST)).content.decode()) == 0
    page = client.get(change_url(flagged)).content.decode()
    assert blurred_thumbs(page) == 0 and "data-mod-mute" not in page
    queue = client.get(reverse("admin:moderation_job_queue")).content.decode()
    assert "mod-blurred" not in queue


# --- query counts -----------------------------------------------------------------------------


def page_queries(client, url) -> int:
    client.get(url)  # warm the session and content types
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


def test_job_page_queries_do_not_grow_with_frames(client, viewer,
                                                  django_assert_max_num_queries):
    client.force_login(viewer)
    counts = []
    for frames in (5, 60):
        job = make_job("medium", frames=frames, flagged_every=2)
        FrameLabel.objects.filter(frame__job=job, risk_level="medium").update(label=CONTACT)
        Frame.objects.filter(job=job).update(text_boxes=text_boxes(DETAILS))
        counts.append(page_queries(client, change_url(job)))
    assert 0 < counts[0] == counts[1]
    with django_assert_max_num_queries(counts[0]):
        body = client.get(change_url(job)).content.decode()
    # 30 flagged frames 2 s apart: one segment, its representative and 12 more drawn
    assert body.count('data-count="30"') == 1 and body.count("mod-box-flagged") == 13


def test_job_list_queries_do_not_grow_with_frames(client, viewer,
                                                  django_assert_max_num_queries):
    client.force_login(viewer)
    few = [make_job("medium", frames=5, flagged_every=1) for _ in range(3)]
    small = page_queries(client, reverse(LIST))
    Job.objects.filter(pk__in=[j.pk for j in few]).delete()
    for _ in range(3):
        make_job("medium", frames=60, flagged_every=1)
    assert 0 < page_queries(client, reverse(LIST)) == small
    with django_assert_max_num_queries(small):
        client.get(reverse(LIST))
