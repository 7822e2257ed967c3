"""Where a frame's text is: the OCR lines as boxes, kept with the frame as evidence.

The engine's details hold each OCR line with its polygon in the analysed frame's pixels
(``details["ocr"]``, ``details["size"]``) and the text rules that fired with the words that
made them (``details["text_hits"]``). The review pages draw the boxes over the thumbnail and
blur only the flagged ones, so the boxes are stored in fractions of the frame (0..1): they
scale to a thumbnail of any size. Pure Python (no numpy): the provider imports it at the top.
"""

from __future__ import annotations

from typing import Any

#: Lines kept per frame: a page of dense text is a few dozen; beyond this the overlay is noise.
MAX_BOXES = 64


def _squash(text: str) -> str:
    return "".join(text.split()).casefold()


def text_boxes(details: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"text", "box": [[x, y] * 4 in 0..1], "labels": [label, ...]}]`` for the OCR
    lines of one frame; ``labels`` names the text rules whose words the line holds (a
    flagged region), empty for other text. ``[]`` when OCR did not run or found nothing."""
    lines = details.get("ocr") or []
    size = details.get("size") or []
    if not lines or len(size) != 2 or not all(size):
        return []
    width, height = float(size[0]), float(size[1])
    hits = [(hit.get("label", ""), [_squash(w) for w in hit.get("risk_words") or () if w])
            for hit in details.get("text_hits") or ()]
    boxes = []
    for line in lines[:MAX_BOXES]:
        text = str(line.get("text") or "")
        try:
            points = [[round(min(max(float(x) / width, 0.0), 1.0), 4),
                       round(min(max(float(y) / height, 0.0), 1.0), 4)]
                      for x, y in line.get("box") or ()]
        except (TypeError, ValueError):
            continue
        if len(points) < 3:
            continue
        squashed = _squash(text)
        labels = sorted({label for label, words in hits
                         if label and any(word in squashed for word in words)})
        boxes.append({"text": text, "box": points, "labels": labels})
    return boxes


__all__ = ["MAX_BOXES", "text_boxes"]
