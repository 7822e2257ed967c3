"""Run the Alibaba Cloud moderation emulator (moderation.emulator) until Ctrl-C."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...emulator.config import EmulatorConfig
from ...emulator.server import start


class Command(BaseCommand):
    help = (
        "Serve a local emulator of Alibaba Cloud Content Moderation that the official "
        "SDKs can call. Defaults come from settings.MODERATION_EMULATOR."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
        parser.add_argument("--port", type=int, help="port (0 picks a free one)")
        parser.add_argument("--access-key-id", help="the one AccessKey id accepted")
        parser.add_argument("--access-key-secret", help="its secret")
        parser.add_argument("--uid", help="the emulated account id")
        parser.add_argument("--oss-root", help="directory standing in for every OSS bucket")
        parser.add_argument("--qps-limit", type=int,
                            help="requests per second before the protocol's 'slow down' answer")
        parser.add_argument("--max-running-tasks", type=int,
                            help="video tasks analysed at once before new ones are refused")

    def handle(self, *args: Any, **options: Any) -> None:
        config = self.config(options)
        config.oss_root.mkdir(parents=True, exist_ok=True)
        try:
            running = start(config)
        except OSError as exc:
            raise CommandError(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
        self.stdout.write(f"Moderation emulator listening on {running.url}")
        self.stdout.write(
            f"  2.0 SDK: Config(endpoint={running.endpoint!r}, protocol='http', "
            f"access_key_id={config.access_key_id!r}, ...)"
        )
        self.stdout.write(f"  OSS root: {config.oss_root}")
        self.stdout.flush()
        try:
            while running.thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            running.stop()

    @staticmethod
    def config(options: dict[str, Any]) -> EmulatorConfig:
        """Settings first, then the command-line options that were given."""
        try:
            base = EmulatorConfig.from_mapping(getattr(settings, "MODERATION_EMULATOR", {}) or {})
        except (TypeError, ValueError) as exc:
            raise CommandError(f"settings.MODERATION_EMULATOR: {exc}") from exc
        names = ("host", "port", "access_key_id", "access_key_secret", "uid", "oss_root",
                 "qps_limit", "max_running_tasks")
        given = {name: options[name] for name in names if options.get(name) is not None}
        if "oss_root" in given:
            given["oss_root"] = Path(given["oss_root"])
        return replace(base, **given)
