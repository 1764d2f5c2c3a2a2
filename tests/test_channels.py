"""Channel renditions (issue 22 point 3): a 9:16 story from a square original is outpainted
through AUTOMATIC1111's img2img with a mask (the loopback server checks the request:
init image, a mask of its size, inpainting_fill), recorded with its provenance and signed
Content Credentials, the call an attempt on the image with its cost, reserved and settled
in the budget; a near-square preset whose attention crop keeps the subject is a crop, no call."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from config.imaging import ChannelsConfig
from config.secrets import Secrets
from config.settings import load_settings
from domain.model import ImageSlot
from domain.templates import TemplateLibrary
from generation.budget import BudgetLedger
from generation.channels import channel_renditions
from generation.generate import generate_image
from generation.record import record_planned
from imaging.channels import crop_cuts_subject, plan_channel, subject_box
from imaging.credentials import verify_file
from imaging.provenance import read_provenance
from providers.chain import ProviderChain
from providers.registry import build_providers
from storage.db import Database
from storage.ledger import ClaimState, ImageLedger
from tests.providers.servers.automatic1111 import A1111Server
from tests.providers.servers.common import photo
from tests.providers.test_template_pins import library_with

SQUARE = 'name: square-mug\ncategory: food\nprompt: "a ceramic mug of cocoa on a wooden table"\nparameters: {format: square}\n'


def test_a_square_original_becomes_a_story_by_outpainting_and_a_near_square_by_cropping(tmp_path: Path, make_config: Callable[..., Path]) -> None:
    folder = library_with(tmp_path, **{"food/square-mug.yaml": SQUARE})
    with A1111Server() as a1111:
        settings = load_settings(
            make_config(
                chain=["automatic1111", "placeholder"],
                providers={"automatic1111": {"enabled": True, "base_url": a1111.url, "cost_usd": 0.02, "timeout_s": 10}},
                budget={"daily_usd": 1.0},
                channels={
                    "presets": [{"name": "near_square", "width": 500, "height": 480}, {"name": "story", "width": 270, "height": 480}],
                    "provider": "automatic1111",
                    "max_side": 512,
                },
            )
        )
        db = Database(settings.database_url)
        budget = BudgetLedger(db, settings.budget)
        chain = ProviderChain(build_providers(settings, Secrets()), retry=settings.retry, budget=budget)
        pk = record_planned(db, TemplateLibrary.load(folder), [ImageSlot("adhoc", date(2026, 12, 5), "t-channels", 0, "food", template="square-mug")])[0]
        row = generate_image(db, chain, pk, spool_dir=settings.spool_dir, policy=settings.policy)
        assert row.status == "generated" and row.width == row.height, row.error
        ledger = ImageLedger(db, settle=budget.settle_in)
        claim = ledger.claim(pk, "run-channels")
        assert claim.state is ClaimState.claimed

        portrait, story = channel_renditions(ledger, chain, claim.row, "run-channels", settings)
        requests = [r for r in a1111.requests if r.path.startswith("/sdapi/v1/")]

    assert [r.path for r in requests] == ["/sdapi/v1/txt2img", "/sdapi/v1/img2img"]  # the near-square crop keeps the subject: no call
    sent = requests[1].json()
    with Image.open(io.BytesIO(base64.b64decode(sent["init_images"][0]))) as canvas, Image.open(io.BytesIO(base64.b64decode(sent["mask"]))) as mask:
        assert canvas.size == mask.size == (sent["width"], sent["height"]) == (288, 512)  # 9:16, sides multiples of 8
        painted = np.asarray(mask.convert("L"))
    assert painted[:40].min() == 255 and painted[-40:].min() == 255 and painted[256].max() == 0  # repaint above and below only
    assert sent["inpainting_fill"] == 1 and sent["denoising_strength"] == 0.9 and sent["prompt"].startswith("a ceramic mug")

    assert (portrait.name, portrait.width, portrait.height) == ("near_square", 500, 480)
    assert (story.name, story.width, story.height, story.format) == ("story", 270, 480, "jpeg")
    assert "outpainting by automatic1111" in read_provenance(story.path).get("provider", "")
    assert verify_file(story.path).valid and verify_file(portrait.path).valid

    attempts = db.attempts(pk)
    assert [(a.provider, a.status, a.cost_usd) for a in attempts] == [("automatic1111", "success", 0.02), ("automatic1111", "success", 0.02)]
    assert ledger.get(pk).cost_usd == pytest.approx(0.04) and ledger.get(pk).status == "generated"
    assert budget.total_spent() == pytest.approx(0.04)  # the outpainting reserved and settled like the generation


def test_the_subject_decides_crop_or_outpaint() -> None:
    with Image.open(io.BytesIO(photo(512, 512, "camera"))) as image:
        source = image.convert("RGB")
    subject = subject_box(source)
    assert 0 < subject[0] < subject[2] < 512  # the cameraman, not the whole frame
    assert plan_channel(source, (1000, 1500)).crop is not None  # 2:3 keeps him
    story = plan_channel(source, (1080, 1920))
    assert story.crop is None and story.outpaint is not None and (story.outpaint.width, story.outpaint.height) == (512, 912)
    assert crop_cuts_subject((0, 0, 100, 512), subject, source.size)
    assert plan_channel(source, (1080, 1920), outpaint=False).crop is not None  # outpaint off: the crop anyway


def test_an_unknown_channel_preset_is_one_clear_line() -> None:
    with pytest.raises(ValueError, match="unknown channel preset 'tiktok'"):
        ChannelsConfig(presets=["tiktok"])
