"""Channel renditions (``channels`` in the configuration): an attention crop when the
subject fits it, else an outpainting plan.

The subject box is where the image's interest is: the smallest band of columns and of rows
holding ``share`` of the edge + saturation energy that the attention crop
(imaging.postprocess ``attention_box``, after libvips' ``interesting=attention``) slides
its window over. When the attention crop of the preset's aspect ratio would cut that box,
the image is outpainted instead: the canvas is padded to the preset's aspect ratio (the
original whole, centred), the new area is filled with a blurred stretch of the image
(a start the inpainting refines) and masked white (white = repaint, the AUTOMATIC1111 /
diffusers convention), the canvas scaled so its longer side is at most ``max_side`` pixels
(multiples of 8). generation/channels.py sends it to an inpainting provider.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from imaging.postprocess import attention_box, energy_map

#: how many pixels of the subject box a crop may shave off each side before it counts as cut
CUT_TOLERANCE = 0.02


def _band(profile: np.ndarray, share: float) -> tuple[int, int]:
    """The narrowest [start, end) band of ``profile`` holding ``share`` of its sum."""
    total = float(profile.sum())
    if total <= 0:
        return 0, len(profile)
    cumulative = np.concatenate([[0.0], np.cumsum(profile)])
    best = (0, len(profile))
    for start in range(len(profile)):
        end = int(np.searchsorted(cumulative, cumulative[start] + share * total, side="left"))
        if end > len(profile):
            break
        if end - start < best[1] - best[0]:
            best = (start, end)
    return best


def subject_box(image: Image.Image, share: float = 0.85) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in ``image`` pixels of the band of columns and rows that
    hold ``share`` (0..1) of the image's interest."""
    energy, factor = energy_map(image)
    left, right = _band(energy.sum(axis=0), share)
    top, bottom = _band(energy.sum(axis=1), share)
    width, height = image.size
    return (
        max(0, int(left / factor)),
        max(0, int(top / factor)),
        min(width, round(right / factor)),
        min(height, round(bottom / factor)),
    )


def crop_cuts_subject(crop: tuple[int, int, int, int], subject: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    """True when ``crop`` leaves out more than ``CUT_TOLERANCE`` of the image's side of ``subject`` on any side."""
    slack_x, slack_y = CUT_TOLERANCE * size[0], CUT_TOLERANCE * size[1]
    return crop[0] > subject[0] + slack_x or crop[1] > subject[1] + slack_y or crop[2] < subject[2] - slack_x or crop[3] < subject[3] - slack_y


@dataclass(frozen=True)
class Outpaint:
    """An outpainting to ask for: the padded ``canvas`` and its ``mask`` (PNG bytes, white =
    repaint), their size (pixels, multiples of 8) and where the original sits in it (box)."""

    canvas: bytes
    mask: bytes
    width: int
    height: int
    placed: tuple[int, int, int, int]


@dataclass(frozen=True)
class ChannelPlan:
    """What a preset needs: the attention ``crop`` (left, top, right, bottom) when the subject
    fits it, else an ``outpaint``; ``subject`` is the subject box that decided it."""

    subject: tuple[int, int, int, int]
    crop: tuple[int, int, int, int] | None = None
    outpaint: Outpaint | None = None


def plan_channel(image: Image.Image, size: tuple[int, int], *, share: float = 0.85, max_side: int = 1024, outpaint: bool = True) -> ChannelPlan:
    """The plan for a rendition of ``size`` (width, height in pixels) from ``image``: the
    attention crop when it keeps the subject box (or ``outpaint`` is off), else the padded
    canvas and mask for an outpainting."""
    subject = subject_box(image, share)
    crop = attention_box(image, size)
    if not outpaint or not crop_cuts_subject(crop, subject, image.size):
        return ChannelPlan(subject, crop=crop)
    return ChannelPlan(subject, outpaint=pad_for(image, size[0] / size[1], max_side))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def pad_for(image: Image.Image, aspect: float, max_side: int) -> Outpaint:
    """``image`` whole on a canvas of ``aspect`` (width / height), scaled so the canvas's
    longer side is at most ``max_side``; the new area a blurred stretch of the image, masked."""
    width, height = image.size
    if width / height > aspect:  # wider than the target: pad above and below
        canvas_w, canvas_h = width, round(width / aspect)
    else:  # taller (or a square to a landscape): pad left and right
        canvas_w, canvas_h = round(height * aspect), height
    scale = min(1.0, max_side / max(canvas_w, canvas_h))
    out_w, out_h = max(64, round(canvas_w * scale / 8) * 8), max(64, round(canvas_h * scale / 8) * 8)
    inner_w, inner_h = min(out_w, round(width * out_w / canvas_w)), min(out_h, round(height * out_h / canvas_h))
    left, top = (out_w - inner_w) // 2, (out_h - inner_h) // 2
    rgb = image.convert("RGB")
    canvas = rgb.resize((out_w, out_h), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(radius=max(4, max(out_w, out_h) // 32)))
    canvas.paste(rgb.resize((inner_w, inner_h), Image.Resampling.LANCZOS), (left, top))
    mask = Image.new("L", (out_w, out_h), 255)
    mask.paste(0, (left, top, left + inner_w, top + inner_h))
    return Outpaint(_png(canvas), _png(mask), out_w, out_h, (left, top, left + inner_w, top + inner_h))
