"""A local stand-in for Alibaba Cloud Content Moderation that the official SDKs can call.

The emulator speaks the real wire protocols (shared/specs/aliyun-protocol.md): it verifies
every signature with :mod:`moderation.providers.aliyun.signing` (§5.1, §6, §3.1), answers
gateway errors exactly as the API gateway does (§8.1) and moderates with the offline
``local`` provider, so the official SDKs and our own client can be tested end to end with
no account, no network and no cost.

Implemented so far: Content Moderation 2.0 ``ImageModeration`` and ``VideoModeration`` /
``VideoModerationResult`` (280 while working, 594 after retention) / ``VideoModerationCancel``
(2022-03-02, §4), with frame images and audio slices served under ``/_emulator/``.
Content Moderation 1.0 paths (``/green/...``) and IMM answer a gateway
``InvalidApi.NotFound`` for now; callbacks and rate limits are not emulated yet.

Start it from Django::

    python manage.py moderation_emulator --port 8765 \\
        --access-key-id LTAI5tEmulator --access-key-secret secret --oss-root ./oss

or from Python (tests)::

    from moderation.emulator.config import EmulatorConfig
    from moderation.emulator.server import start

    running = start(EmulatorConfig(port=0, oss_root=tmp_path))
    ...  # Config(endpoint=running.endpoint, protocol="http") for the 2.0 SDK
    running.stop()

Pieces: :mod:`.config` (keys and limits), :mod:`.app` (the WSGI app: read, verify,
route), :mod:`.guardrails` / :mod:`.guardrails_video` (2.0 handlers), :mod:`.tasks` (the
asynchronous task store), :mod:`.server` (a threaded ``wsgiref`` server).
"""
