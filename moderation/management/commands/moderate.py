"""Run one file through a provider in the foreground and print the normalized result."""

from __future__ import annotations

import json
import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.utils import DatabaseError

from ...media import guess_kind
from ...providers import Media, ModerationError, ModerationRequest, UnknownProvider, get_provider
from ...providers.base import MEDIA_KINDS


class Command(BaseCommand):
    help = "Moderate PATH with a provider and print the result (nothing is stored)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a local file")
        parser.add_argument("--provider", help="provider alias (default: DEFAULT_PROVIDER)")
        parser.add_argument("--scenes", nargs="+", help="scenes, e.g. porn qrcode ad")
        parser.add_argument("--kind", choices=MEDIA_KINDS, help="media kind (default: guessed)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--wait", type=float, default=600,
                            help="seconds to wait for an asynchronous provider")

    def handle(self, *args, path, provider, scenes, kind, json: bool, wait, **options):
        if not os.path.isfile(path):
            raise CommandError(f"{path}: no such file")
        from django.db import models

        kind = kind or guess_kind(models.FileField(), path)
        try:
            engine = get_provider(provider)
            media = Media.from_path(path, kind)
            engine.check_media(media)
            request = ModerationRequest(scenes=list(scenes or engine.default_scenes),
                                        libraries=_libraries())
            result = engine.submit(media, request)
            deadline = time.monotonic() + wait
            while not result.finished:
                if time.monotonic() > deadline:
                    raise CommandError(f"{path}: no result after {wait:.0f} s")
                time.sleep(2)
                result = engine.fetch(result.task_id, request)
        except UnknownProvider as exc:
            raise CommandError(str(exc)) from exc
        except ModerationError as exc:
            raise CommandError(f"{path}: {exc.message} [{exc.code}]") from exc

        data = result.to_dict()
        data.pop("raw", None)
        if json:
            self.stdout.write(_json_dump(data))
        else:
            self.stdout.write(render_table(path, data))


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
            lines.append(f"    {part['start']:>7.2f}-{part['end']:<7.2f} {part['risk_level']:<6} "
                         f"{part['text']}")
    return "\n".join(lines)
