"""The offline placeholder: renders the prompt text onto a gradient, locally, at cost 0.

It is the last resort of every chain. Its images are recorded with
``is_placeholder=True`` and stored under ``placeholder/``, never under ``content/``:
a placeholder is never published as real content.
"""

from __future__ import annotations

import hashlib
import io
import textwrap
import time
from typing import ClassVar

from typing import Annotated

from PIL import Image, ImageDraw, ImageFont, ImageOps
from pydantic import Field

from domain.model import GenerationRequest, GenerationResult
from providers.base import Provider, result_from_bytes
from providers.spec import ProviderConfig


def render_placeholder(prompt: str, width: int, height: int, seed: int) -> bytes:
    """A ``width`` x ``height`` RGB PNG: a seed-coloured gradient with the prompt written on it."""
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    dark = tuple(int(b) // 3 for b in digest[0:3])
    light = tuple(128 + int(b) // 2 for b in digest[3:6])
    gradient = Image.linear_gradient("L").resize((width, height))
    image = ImageOps.colorize(gradient, black=dark, white=light).convert("RGB")
    draw = ImageDraw.Draw(image)
    size = max(12, width // 28)
    font = ImageFont.load_default(size=size)
    chars = max(10, int(width / (size * 0.55)))
    lines = ["PLACEHOLDER", ""] + textwrap.wrap(prompt, width=chars)[: max(1, height // (size * 2) - 3)]
    y = height // 10
    for line in lines:
        draw.text((width // 20, y), line, fill=(255, 255, 255), font=font, stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
        y += int(size * 1.4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


class PlaceholderConfig(ProviderConfig):
    """The offline placeholder: renders the prompt text; cost 0, never published as content."""

    delay_s: Annotated[float, Field(ge=0, le=60)] = 0.0


class PlaceholderProvider(Provider):
    """Renders the prompt locally; needs no network, no key, no GPU."""

    name: ClassVar[str] = "placeholder"
    display_name: ClassVar[str] = "Offline placeholder"
    Config = PlaceholderConfig
    models: ClassVar[tuple[str, ...]] = ("text-render",)
    default_model: ClassVar[str] = "text-render"
    is_placeholder: ClassVar[bool] = True

    config: PlaceholderConfig

    def estimate_cost(self, request: GenerationRequest) -> float:
        return 0.0

    def generate(self, request: GenerationRequest) -> GenerationResult:
        started = time.monotonic()
        delay = self.config.delay_s
        if delay:
            time.sleep(delay)
        seed = request.seed if request.seed is not None else 0
        data = render_placeholder(request.prompt, request.width, request.height, seed)
        return result_from_bytes(data, provider=self, request=request, model=self.model, seed=seed, cost_usd=0.0, started=started)
