"""A cheap test for "this frame may hold text", to skip OCR where it cannot find any.

OCR costs ~140 ms on a 720p frame without text (text detection alone, at 960 wide) and
is most of a video's CPU time (ENGINE-NOTES 9). Text needs strokes: this test looks at a
morphological edge map (2-10 ms) at two scales and says "maybe" when it sees

* more than 2 % edge pixels: photos and anything busy, where text could hide among
  other edges (text on a photo merges with it), so OCR always runs there;
* or at least 8 dense, character-shaped edge blobs (letters, digits, CJK strokes);
* or a horizontal or vertical band of closely spaced edges (a line of text; big titles at
  the coarse scale).

So it only answers "no" on simple frames: skies, gradients, flat graphics, black or faded
frames. Measured on the test media, the bench video and synthetic hard cases (6 px text,
grey text on a photo, text across an edge, a vertical line, a 5x title, each also as a
JPEG q40): no text frame missed, OCR skipped on every text-free frame of the videos. Blob
shape and density matter: without them the fragments of one H.264-compressed hill edge
counted as letters on most frames. On camera footage most frames pass the 2 % bar, so
the saving is on graphic content; a false "maybe" only costs the OCR.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .engine import _cv2

SCALES = (640, 214)  # working widths: normal text, then big titles
MIN_EDGE = 32  # gradient below this is noise or a soft gradient, whatever Otsu says
BUSY = 0.02  # share of edge pixels above which the frame gets OCR without a question
MIN_CHARS = 8  # character-sized blobs that make a word
CHAR = (4, 40)  # blob height range, pixels at the working width
CHAR_ASPECT = 3  # a blob at most this many times wider than tall (a letter or two)
CHAR_FILL = 0.35  # share of its box a blob's edges fill (edge fragments are sparse)
LINE = (6, 60)  # text line height range
BRIDGE = 9  # pixels between letters that a closing bridges


def text_evidence(bgr: NDArray[np.uint8]) -> str:
    """Why the frame may hold text (``"chars640:12"``), or ``""`` when it cannot."""
    cv2 = _cv2()
    height, width = bgr.shape[:2]
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    for target in SCALES:
        size = (target, max(1, round(height * target / width)))
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        reason = _evidence_at(cv2, _edges(cv2, small))
        if reason:
            return f"{reason}{target}"
    return ""


def may_have_text(bgr: NDArray[np.uint8]) -> bool:
    return bool(text_evidence(bgr))


def _edges(cv2, gray: NDArray[np.uint8]) -> NDArray[np.uint8]:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    gradient = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, kernel)
    otsu, _ = cv2.threshold(gradient, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    _, edges = cv2.threshold(gradient, max(otsu, MIN_EDGE), 255, cv2.THRESH_BINARY)
    return edges


def _evidence_at(cv2, edges: NDArray[np.uint8]) -> str:
    if np.count_nonzero(edges) > BUSY * edges.size:
        return "busy"
    _, _, stats, _ = cv2.connectedComponentsWithStats(edges)
    chars = sum(
        1 for _, _, w, h, area in stats[1:]
        if CHAR[0] <= h <= CHAR[1] and 2 <= w <= CHAR_ASPECT * h and area >= CHAR_FILL * w * h
    )
    if chars >= MIN_CHARS:
        return "chars"
    for kernel, along in (((BRIDGE, 1), "h"), ((1, BRIDGE), "v")):
        closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(
            cv2.MORPH_RECT, kernel))
        if _has_line(cv2, closed, vertical=along == "v"):
            return "line"
    return ""


def _has_line(cv2, closed: NDArray[np.uint8], vertical: bool) -> bool:
    """A dense band at least twice as long as it is thick, of text-line thickness."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(closed)
    for _, _, w, h, area in stats[1:]:
        length, thickness = (h, w) if vertical else (w, h)
        if LINE[0] <= thickness <= LINE[1] and length >= 2 * thickness and area >= 0.4 * w * h:
            return True
    return False
