"""Reference images (img2img) shaped for models whose output follows the reference.

Some models ignore the requested size or aspect ratio when given an image and answer in
the reference's aspect ratio: Replicate's black-forest-labs/flux-dev (replicate/cog-flux,
predict.py: with ``image`` the width and height come from the image). Sent as it is, a
768 x 512 reference for a 1024 x 1024 request comes back 3:2, fails our output check and
is paid for nothing. ``crop_to_ratio`` centre-crops the reference to the requested aspect
ratio before it is sent, and says so in a note that goes into the attempt's metadata.
"""

from __future__ import annotations

import io

from PIL import Image

#: How far (relative) the reference's aspect ratio may be from the target before cropping.
RATIO_TOLERANCE = 0.01


def crop_to_ratio(data: bytes, width: int, height: int) -> tuple[bytes, str | None]:
    """``data`` (PNG / JPEG / WebP bytes) centre-cropped to the aspect ratio ``width`` /
    ``height`` (pixels), in its own format, and a note ("reference cropped from 768x512 to
    512x512 ..."); the bytes unchanged and None when the ratio already matches (within
    ``RATIO_TOLERANCE``). Raises PIL's errors for bytes that are not an image."""
    with Image.open(io.BytesIO(data)) as image:
        src_w, src_h = image.size
        fmt = image.format or "PNG"
        target = width / height
        if abs(src_w / src_h - target) / target <= RATIO_TOLERANCE:
            return data, None
        if src_w / src_h > target:  # too wide: trim the sides
            new_w, new_h = max(1, round(src_h * target)), src_h
        else:  # too tall: trim top and bottom
            new_w, new_h = src_w, max(1, round(src_w / target))
        left, top = (src_w - new_w) // 2, (src_h - new_h) // 2
        cropped = image.crop((left, top, left + new_w, top + new_h))
        buffer = io.BytesIO()
        if fmt == "JPEG":
            cropped.convert("RGB").save(buffer, "JPEG", quality=95)
        elif fmt == "WEBP":
            cropped.save(buffer, "WEBP", quality=95)
        else:
            cropped.save(buffer, "PNG")
    note = f"reference cropped from {src_w}x{src_h} to {new_w}x{new_h} (the model answers in the reference's aspect ratio; {width}x{height} requested)"
    return buffer.getvalue(), note
