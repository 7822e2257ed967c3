"""Run media through a provider in the foreground and print the normalized result."""

from __future__ import annotations

import json
import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import models
from django.db.utils import DatabaseError

from ...media import guess_kind, is_url
from ...providers import Media, ModerationError, ModerationRequest, get_provider
from ...providers.base import MEDIA_KINDS
from ...registry import validate_frame_options


class Command(BaseCommand):
    help = ("Moderate PATH (a file, a stream URL, or with --kind frames several images) "
            "with a provider and print the result. Nothing is stored.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH|URL",
                            help="a file; a live stream URL; frames as FILE[@SECONDS]")
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
            if kind == "live":
                result = self._follow(engine, media, request, json)
            else:
                result = _wait(engine, engine.submit(media, request), request, wait, first)
        except ModerationError as exc:
            raise CommandError(f"{first}: {exc.message} [{exc.code}]") from exc

        data = result.to_dict()
        data.pop("raw", None)
        self.stdout.write(_json_dump(data) if json else render_table(first, data))

    def _follow(self, engine, media, request, as_json: bool):
        """Print each chunk of a live stream as it comes; return the whole result."""
        from ...providers import Result
        from ...providers.result import worst_risk

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
        from ...policy import suggestion_for

        total.suggestion = suggestion_for(total.risk_level)
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
    from ...libraries import hash_library

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
