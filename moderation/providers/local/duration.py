"""The duration cap of video and audio files (``MODERATION["MAX_DURATION"]``).

A job's time grows with the media's length, and a header can lie about that length: a
file may declare 10 s and run for 10 h. So the cap is checked three times, each where it
is cheapest: the declared duration after the probe, packet times during the probe's
demux pass (which stops at the cap), and decoded samples while the audio streams. Past
the cap the file fails with ``too_long`` rather than being analysed in part: an unchecked
tail is a way around moderation (hours of silence, then the content).
"""

from __future__ import annotations

from ..errors import MediaError

DEFAULT_MAX_DURATION = 4 * 3600.0
# Rounding and container slack: a file is "too long" only past the cap by more than this.
SLACK = 1.0


def too_long(seconds: float, limit: float, *, declared: bool) -> MediaError:
    how = "declares" if declared else "runs for at least"
    return MediaError(
        f"the file {how} {seconds:.0f} s, more than the limit of {limit:g} s (MAX_DURATION)",
        code="too_long",
    )


def check_declared(duration: float, limit: float | None) -> None:
    """``too_long`` when the probed duration is past the cap."""
    if limit is not None and duration > limit + SLACK:
        raise too_long(duration, limit, declared=True)


def check_reached(position: float, limit: float | None) -> None:
    """``too_long`` as soon as demuxing or decoding reaches past the cap."""
    if limit is not None and position > limit + SLACK:
        raise too_long(position, limit, declared=False)
