"""Hash libraries (moderation/libraries.py): matching, the per-process snapshot, how it
crosses to worker processes, and the pre-check that answers an image before a remote
provider is called (the 2.0 client against the real emulator). Speed: bench/libraries.py."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from PIL import Image

from moderation import feedback, libraries, pipeline
from moderation.emulator.app import Fault
from moderation.imaging import image_pdq
from moderation.libraries import HashLibrary, hash_library, match_threshold
from moderation.models import Decision, HashEntry, Job, Status
from moderation.providers import get_provider
from tests.conftest import ROOT, SAMPLES, emulator_fixture
from tests.providers import result
from tests.testapp.models import Photo

KEY_ID, SECRET = "LTAI5tLibraryKeyId0001", "library-secret-00000000000000000"


def random_hashes(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [row.tobytes().hex() for row in rng.integers(0, 256, (n, 32), dtype=np.uint8)]


def flip(pdq: str, bits: int) -> str:
    """``pdq`` with its first ``bits`` bits inverted (that many bits away)."""
    value = int(pdq, 16) ^ (((1 << bits) - 1) << (256 - bits))
    return f"{value:064x}"


# --- matching ----------------------------------------------------------------------------


def test_nearest_entry_within_threshold_and_allow_wins_a_tie():
    a, b = random_hashes(2)
    library = HashLibrary([(1, "block", "violent_explosion", a), (2, "block", "x", b),
                           (3, "allow", "", flip(a, 4))], threshold=31)
    hit = library.match(flip(a, 2))  # 2 bits from a (block), 2 from the allow entry
    assert (hit.list_type, hit.entry_id, hit.distance) == ("allow", 3, 2)
    hit = library.match(b)
    assert (hit.list_type, hit.label, hit.distance, hit.entry_id) == ("block", "x", 0, 2)
    assert library.match(flip(b, 31)).entry_id == 2
    assert library.match(flip(b, 32)) is None
    assert library.match(b, quality=49) is None  # low-quality probes match nothing
    assert len(library) == 3 and library.max_id == 3


def test_extended_keeps_labels_and_order():
    hashes = random_hashes(4, seed=2)
    library = HashLibrary([(1, "block", "a", hashes[0]), (2, "allow", "", hashes[1])], 31)
    bigger = library.extended([(5, "block", "b", hashes[2]), (7, "block", "a", hashes[3])])
    assert len(library) == 2 and len(bigger) == 4
    assert [bigger.match(h).label for h in hashes] == ["a", "", "b", "a"]
    assert [bigger.match(h).entry_id for h in hashes] == [1, 2, 5, 7]


def test_a_pickled_library_is_a_path_mapped_once_per_process():
    hashes = random_hashes(5000, seed=3)
    entries = [(i + 1, "block" if i % 2 else "allow", f"l{i % 7}", h)
               for i, h in enumerate(hashes)]
    library = HashLibrary(entries, threshold=20)
    payload = pickle.dumps(library)
    assert len(payload) < 500  # not the 220 kB of arrays
    assert pickle.dumps(library) == payload  # written once per snapshot
    copy = pickle.loads(payload)
    assert copy is pickle.loads(payload)  # mapped once, then cached
    assert copy.threshold == 20 and len(copy) == 5000
    for i in (0, 1, 2500, 4999):
        ours, theirs = library.match(hashes[i]), copy.match(flip(hashes[i], 3))
        assert (theirs.entry_id, theirs.list_type, theirs.label) == (
            ours.entry_id, ours.list_type, ours.label)
    # and in a fresh process, as a frame task sees it
    code = ("import pickle, sys; lib = pickle.loads(sys.stdin.buffer.read()); "
            f"print(lib.match({hashes[10]!r}).entry_id, len(lib))")
    out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True,
                         cwd=ROOT, check=True)
    assert out.stdout.split() == [b"11", b"5000"]


def test_frames_in_worker_processes_see_the_shared_library():
    """A frame sequence through the local engine's process pool: the library reaches the
    workers as a mapped file, and the frame that matches skips the detectors there."""
    from moderation.providers.local import pool
    from moderation.providers.local.video import analyse_frames

    qr, benign = (SAMPLES / "qrcode.jpg").read_bytes(), (SAMPLES / "benign.jpg").read_bytes()
    library = HashLibrary([(1, "allow", "", libraries.image_pdq(qr)[0])], threshold=31)
    try:
        result = analyse_frames([(0.0, benign), (1.0, qr)], scenes=["porn", "qrcode"],
                                libraries=library,
                                options={"parallelism": "processes", "workers": 1,
                                         "dedup_threshold": 0})
    finally:
        pool.shutdown_pools()
    assert result.raw["parallelism"] == "processes"
    by_offset = {frame.offset: [lbl.label for lbl in frame.labels] for frame in result.frames}
    assert by_offset[1.0] == ["nonLabel_lib"]
    assert "nonLabel_lib" not in by_offset[0.0]


# --- the snapshot --------------------------------------------------------------------------


@pytest.mark.django_db
def test_snapshot_follows_additions_deletions_and_edits():
    libraries.invalidate()
    assert hash_library() is None
    one, two, three = random_hashes(3, seed=4)
    first = HashEntry.objects.create(list_type="block", label="a", pdq=one)
    library = hash_library()
    assert len(library) == 1 and hash_library() is library  # cached while unchanged
    HashEntry.objects.bulk_create([HashEntry(list_type="allow", pdq=two),
                                   HashEntry(list_type="block", label="c", pdq=three)])
    grown = hash_library()  # bulk_create sends no signal: the version tells
    assert len(grown) == 3 and grown.match(three).label == "c"
    HashEntry.objects.filter(pk=first.pk).delete()
    assert hash_library().match(one) is None
    HashEntry.objects.filter(pdq=three).update(label="changed")  # no signal, same version
    libraries._cached.loaded_at -= libraries.REFRESH_SECONDS  # ...until the refresh
    assert hash_library().match(three).label == "changed"


@pytest.mark.django_db
def test_threshold_setting_and_the_local_override(settings):
    pdq = random_hashes(1, seed=5)[0]
    HashEntry.objects.create(list_type="block", label="a", pdq=pdq)
    base = dict(settings.MODERATION)
    with override_settings(MODERATION={**base, "LIBRARY_MATCH_THRESHOLD": 10}):
        assert match_threshold() == 10
        assert hash_library().match(flip(pdq, 10)) and not hash_library().match(flip(pdq, 11))
    local = {"local": {"OPTIONS": {"pdq_threshold": 40}}}
    with override_settings(MODERATION={**base, "LIBRARY_MATCH_THRESHOLD": 10,
                                       "PROVIDERS": local}):
        assert match_threshold() == 40 and hash_library().match(flip(pdq, 40))
    assert match_threshold() == 31  # the default


# --- the pre-check, with the 2.0 client and the real emulator -----------------------------


emulator = emulator_fixture(uses=("no_proxy",), clear_providers=True, access_key_id=KEY_ID,
                            access_key_secret=SECRET, uid="1234567890")


def guardrails_settings(live_server, emulator, **extra):
    return {
        "PUBLIC_BASE_URL": live_server.url, "ALLOW_PRIVATE_ADDRESSES": True,
        "PROVIDERS": {"aliyun_guardrails": {
            "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
            "OPTIONS": {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": SECRET,
                        "ENDPOINT": emulator.url},
        }},
        **extra,
    }


def resized_copy(name: str, scale: float = 0.85) -> bytes:
    image = Image.open(SAMPLES / name).convert("RGB")
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def upload(register, data: bytes, name: str) -> Job:
    register(Photo, provider="aliyun_guardrails")
    photo = Photo.objects.create(image=ContentFile(data, name=name))
    return Job.objects.get(object_id=str(photo.pk))


@pytest.mark.django_db(transaction=True)
def test_rejected_image_is_answered_by_the_library_without_a_2_0_call(live_server, emulator,
                                                                      register):
    with override_settings(MODERATION=guardrails_settings(live_server, emulator)):
        get_provider.cache_clear()
        job = upload(register, (SAMPLES / "qrcode.jpg").read_bytes(), "qr.jpg")
        assert pipeline.process(job.pk) == "done"
        job.refresh_from_db()
        assert "pt_qrCode" in job.labels and job.suggestion == "review"
        # 2.0 has no feedback API: the verdict goes to the local library
        item = feedback.request_feedback(job, Decision.REJECTED)
        assert feedback.send(item.pk) == "library"
        assert HashEntry.objects.get().label == "pt_qrCode"

        # From now on a call to ImageModeration would fail: the pre-check must answer.
        emulator.faults.add(Fault("error", count=5, match="ImageModeration", status=503))
        copy = upload(register, resized_copy("qrcode.jpg"), "qr-copy.jpg")
        assert pipeline.process(copy.pk) == "library"
        copy.refresh_from_db()
        assert copy.status == Status.DONE and copy.labels == ["pt_qrCode_lib"]
        assert copy.risk_level == "high" and copy.suggestion == "block"
        assert copy.raw_result["provider"] == "library"
        assert copy.frames.get().thumbnail  # evidence for the console, as for any answer
        assert emulator.faults.injected == {}  # the provider was never called

        # An unrelated image still goes to the provider (and meets the outage).
        other = upload(register, (SAMPLES / "benign.jpg").read_bytes(), "b.jpg")
        assert pipeline.process(other.pk) == "retry"
        assert emulator.faults.injected == {"error": 1}


@pytest.mark.django_db(transaction=True)
def test_precheck_can_be_turned_off(live_server, emulator, register):
    conf = guardrails_settings(live_server, emulator, LIBRARY_PRECHECK=False)
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        data = (SAMPLES / "benign.jpg").read_bytes()
        pdq = libraries.image_pdq(data)[0]
        HashEntry.objects.create(list_type="block", label="violent_explosion", pdq=pdq)
        job = upload(register, data, "b.jpg")
        assert pipeline.process(job.pk) == "done"
        job.refresh_from_db()
        assert job.raw_result["Code"] == 200  # the provider answered, not the library
        assert "violent_explosion_lib" not in job.labels


@pytest.mark.django_db
def test_a_miss_goes_to_the_provider(register, scripted, image_file):
    scripted.script.append(result())
    register(Photo, provider="scripted")
    HashEntry.objects.create(list_type="block", label="x", pdq=random_hashes(1, seed=6)[0])
    photo = Photo.objects.create(image=image_file())
    job = Job.objects.get(object_id=str(photo.pk))
    assert pipeline.process(job.pk) == "done"
    assert [call[0] for call in scripted.calls] == ["submit"]


@pytest.mark.django_db
@pytest.mark.parametrize("consults", [False, True])
def test_a_provider_that_consults_the_libraries_itself_skips_the_precheck(
        register, scripted, monkeypatch, consults):
    """``Provider.consults_libraries`` (a flag any provider may set, as the local engine
    does): the pre-check leaves a blocked image to it, with the libraries in the request;
    without the flag the pre-check answers and the provider is not called."""
    data = (SAMPLES / "qrcode.jpg").read_bytes()
    pdq, _quality, _bgr = image_pdq(data)
    HashEntry.objects.create(list_type="block", label="pt_qrCode", pdq=pdq)
    monkeypatch.setattr(scripted, "consults_libraries", consults)
    scripted.script.append(result())
    register(Photo, provider="scripted")
    photo = Photo.objects.create(image=ContentFile(data, name="qr.jpg"))
    job = Job.objects.get(object_id=str(photo.pk))
    if consults:
        assert pipeline.process(job.pk) == "done"
        [(method, _name, _head, request)] = scripted.calls
        assert method == "submit" and request.libraries.match(pdq).label == "pt_qrCode"
    else:
        assert pipeline.process(job.pk) == "library"
        assert scripted.calls == []
