"""A local stand-in for Alibaba Cloud Content Moderation that the official SDKs can call.

The emulator speaks the real wire protocols (shared/specs/aliyun-protocol.md): it verifies
every signature with its own :mod:`.verify` (§5.1, §6, §3.1; written apart from the client's
signer so the two cannot share a mistake), answers gateway errors exactly as the API gateway
does (§8.1) and moderates with the offline ``local`` provider, so the official SDKs and our
own client can be tested end to end with no account, no network and no cost.

It serves Content Moderation 2.0 (``ImageModeration``, ``VideoModeration`` / ``Result`` /
``Cancel``, 2022-03-02, §4), Content Moderation 1.0 (``/green/image/scan``, image and video
async scans and results, frame sync scans, feedback; 2018-05-09, §2) and IMM
(``Create{Video,Image}ModerationTask``, ``Get*ModerationResult``, ``GetTask``; 2020-09-30,
§7). Frame images and audio slices are served under ``/_emulator/``; results are kept for
each product's retention (1 h, 24 h, 7 days), then answer "expired"; callbacks are
delivered with the documented checksum and retries. Account limits (``qps_limit``,
``max_running_tasks``) answer each protocol's "slow down", and tests script outages with
``running.faults.add(Fault(...))``.

Start it from Django::

    python manage.py moderation_emulator --port 8765 \\
        --access-key-id LTAI5tEmulator --access-key-secret secret --oss-root ./oss

or from Python (tests)::

    from moderation.emulator.config import EmulatorConfig
    from moderation.emulator.server import start

    running = start(EmulatorConfig(port=0, oss_root=tmp_path))
    ...  # Config(endpoint=running.endpoint, protocol="http") for the 2.0 SDK
    running.stop()

Pieces: :mod:`.config` (keys and limits), :mod:`.verify` (the gateway's signature checks),
:mod:`.app` (the WSGI app: read, verify, route, limits, faults), :mod:`.guardrails` /
:mod:`.guardrails_video` (2.0), :mod:`.green` / :mod:`.green_video` (1.0), :mod:`.imm`
(IMM), :mod:`.video_tasks` (fetch, analyse, retain, serve files, call back: shared by the
three), :mod:`.tasks` (the task store), :mod:`.server` (a threaded ``wsgiref`` server).
"""
