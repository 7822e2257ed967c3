"""Run media through a provider in the foreground and print the normalized result.

Remote providers (``needs_url``: the Alibaba services) download the media themselves, so a
PATH must be something they can reach: an http(s) URL, or ``oss://BUCKET/KEY`` where the
provider reads OSS (Content Moderation 2.0). A local file is served for the length of the
command on loopback only when the provider's endpoint is itself on loopback (the emulator);
a real service could not reach it, so the command exits with status 2 and says what to do.
"""

from __future__ import annotations

import json
import mimetypes
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

from django.core.management.base import BaseCommand, CommandError
from django.db import models
from django.db.utils import DatabaseError

from ...libraries import hash_library
from ...media import guess_kind, is_url
from ...policy import suggestion_for
from ...providers import Media, ModerationError, ModerationRequest, Result, get_provider
from ...providers.base import MEDIA_KINDS
from ...providers.result import worst_risk
from ...registry import validate_frame_options
from ...remote import is_loopback_host


class Command(BaseCommand):
    help = ("Moderate PATH (a file, a URL, oss://BUCKET/KEY, or with --kind frames several "
            "images) with a provider and print the result. Nothing is stored.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH|URL",
                            help="a file; a URL (media or live stream); oss://BUCKET/KEY "
                                 "(remote providers); frames as FILE[@SECONDS]")
        parser.add_argument("--provider", help="provider alias (default: DEFAULT_PROVIDER)")
        parser.add_argument("--scenes", nargs="+", help="scenes, e.g. porn qrcode ad")
        parser.add_argument("--kind", choices=MEDIA_KINDS, help="media kind (default: guessed)")
        parser.add_argument("--interval", type=float, help="video: seconds between frames")
        parser.add_argument("--max-frames", type=int, help="video: at most this many frames")
        parser.add_argument("--no-audio", action="store_true", help="video: skip the soundtrack")
        parser.add_argument("--max-duration", type=float, help="live: stop after N seconds")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--wait", type=float, default=600,
                            help="seconds to wait for an asynchronous provider")

    def handle(self, *args, paths, provider, scenes, kind, json: bool, wait, **options):
        problem = validate_frame_options(options["interval"], options["max_frames"])
        if problem:
            raise CommandError(problem)
        first = paths[0]
        kind = kind or (guess_kind(models.URLField(), first) if is_url(first)
                        else guess_kind(models.FileField(), first))
        if len(paths) > 1 and kind != "frames":
            raise CommandError("several paths are only for --kind frames")
        try:
            engine = get_provider(provider)
            media = build_media(paths, kind)
            engine.check_media(media)
            request = ModerationRequest(
                scenes=list(scenes or engine.default_scenes),
                libraries=_libraries(),
                options=_job_options(options),
            )
            with reachable(engine, media) as media:
                if kind == "live":
                    result = self._follow(engine, media, request, json)
                else:
                    result = _wait(engine, engine.submit(media, request), request, wait, first)
        except ModerationError as exc:
            raise CommandError(f"{first}: {exc.message} [{exc.code}]") from exc

        # Providers return findings; the site's POLICY decides, as the pipeline would.
        result.suggestion = suggestion_for(result.risk_level)
        data = result.to_dict()
        data.pop("raw", None)
        self.stdout.write(_json_dump(data) if json else render_table(first, data))

    def _follow(self, engine, media, request, as_json: bool):
        """Print each chunk of a live stream as it comes; return the whole result."""
        total = Result(status="in_progress")
        for partial in engine.stream(media, request):
            total.frames += partial.frames
            total.slices += partial.slices
            total.risk_level = worst_risk([total.risk_level, partial.risk_level])
            if not as_json:
                last = max([f.offset for f in partial.frames] + [0.0])
                self.stdout.write(f"  ... up to {last:.0f} s: risk {partial.risk_level}")
        total.status = "done"
        total.labels = _job_labels(total)
        return total


def build_media(paths: list[str], kind: str) -> Media:
    if kind == "frames":
        frames = []
        for i, spec in enumerate(paths):
            path, _, offset = spec.partition("@")
            if not os.path.isfile(path):
                raise CommandError(f"{path}: no such file")
            with open(path, "rb") as fh:
                frames.append((float(offset) if offset else float(i), fh.read()))
        return Media(name=f"{len(frames)} frames", kind="frames", frames=frames)
    if is_url(paths[0]):
        return Media(name=paths[0], kind=kind, url=paths[0])
    if not os.path.isfile(paths[0]):
        raise CommandError(f"{paths[0]}: no such file")
    return Media.from_path(paths[0], kind)


# --- local files for providers that download the media themselves -------------------------


def loopback_endpoint(engine) -> bool:
    """True when the provider's endpoint (``(scheme, host[:port])`` of the Alibaba
    providers) is on this machine's loopback, i.e. an emulator that can fetch from us."""
    endpoint = getattr(engine, "endpoint", None)
    if not (isinstance(endpoint, tuple) and len(endpoint) == 2):
        return False
    return is_loopback_host(urlsplit(f"//{endpoint[1]}").hostname or "")


def unreachable_message(engine, path: str) -> str:
    return (
        f"{path}: provider {engine.alias!r} downloads the media itself and cannot reach a "
        "file on this machine. Pass a URL it can fetch (https://...), an OSS object "
        "(oss://BUCKET/KEY; Content Moderation 2.0, read with the provider's REGION), or "
        "use --provider local. Local files are served only to an emulator whose ENDPOINT "
        "is on loopback."
    )


@contextmanager
def reachable(engine, media: Media) -> Iterator[Media]:
    """``media`` as the provider can take it. Only a local file for a ``needs_url``
    provider changes: served on loopback (one unguessable path, GET/HEAD only) while the
    block runs when the endpoint is a loopback emulator; otherwise exit status 2."""
    if not engine.needs_url or media.url or not media.path:
        yield media
        return
    if not loopback_endpoint(engine):
        raise CommandError(unreachable_message(engine, media.path), returncode=2)
    with serve_file(media.path) as url:
        yield replace(media, url=url)


@contextmanager
def serve_file(path: str) -> Iterator[str]:
    """Serve the file at ``path`` on 127.0.0.1 from a thread; yields its URL. Every other
    path is 404, so nothing else on the machine is exposed, even to local processes."""
    name = os.path.basename(path)
    route = f"/{secrets.token_urlsafe(16)}/{quote(name)}"
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"

    class OneFile(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            if self.path != route:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(os.path.getsize(path)))
            self.end_headers()
            if body:
                with open(path, "rb") as fh:
                    shutil.copyfileobj(fh, self.wfile)

        def log_message(self, format, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), OneFile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="moderate-serve-file", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{route}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _job_options(options) -> dict:
    out = {"audio": not options["no_audio"]}
    for key in ("interval", "max_frames", "max_duration"):
        if options.get(key) is not None:
            out[key] = options[key]
    return out


def _job_labels(result):
    best = {}
    for label in result.all_labels():
        if label.label not in best or label.confidence > best[label.label].confidence:
            best[label.label] = label
    return [lbl for lbl in best.values() if lbl.risk_level != "none"]


def _wait(engine, result, request, wait: float, name: str):
    deadline = time.monotonic() + wait
    while not result.finished:
        if time.monotonic() > deadline:
            raise CommandError(f"{name}: no result after {wait:.0f} s")
        time.sleep(2)
        result = engine.fetch(result.task_id, request)
    return result


def _json_dump(data) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


def _libraries():
    """The hash libraries, when the database is there (the command works without one)."""
    try:
        return hash_library()
    except DatabaseError:
        return None


def render_table(path: str, data: dict) -> str:
    lines = [
        f"{path}",
        f"  suggestion: {data['suggestion']}   risk level: {data['risk_level']}",
        "  labels:",
    ]
    none = {"label": "-", "confidence": 0, "risk_level": "", "description": ""}
    for lbl in data["labels"] or [none]:
        lines.append(f"    {lbl['label']:<34} {lbl['confidence']:>6.1f}  {lbl['risk_level']:<6} "
                     f"{lbl.get('description', '')}".rstrip())
    if len(data["frames"]) > 1:
        lines.append(f"  frames: {len(data['frames'])}")
        for frame in data["frames"]:
            if frame["risk_level"] != "none":
                names = ", ".join(lbl["label"] for lbl in frame["labels"])
                lines.append(f"    {frame['offset']:>8.2f}s  {frame['risk_level']:<6} {names}")
    if data["slices"]:
        lines.append(f"  slices: {len(data['slices'])}")
        for part in data["slices"]:
            words = f"  [{', '.join(part['risk_words'])}]" if part["risk_words"] else ""
            lines.append(f"    {part['start']:>7.2f}-{part['end']:<7.2f} {part['risk_level']:<6} "
                         f"{part['text']}{words}")
    return "\n".join(lines)
