"""Templates that pin a provider, a model, LoRAs and a seed, or name a reference image and a
mask (img2img / inpainting), and the ad-hoc flow's reference parameters: from the YAML
file through planning and the chain to the provider's request; providers that cannot
serve the request are skipped with an attempt row saying why."""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from config.imaging import PolicyConfig
from config.secrets import Secrets
from providers.chain import RetryConfig
from domain.model import GenerationRequest, ImageSlot, StyleInput, StyleReference
from domain.errors import ProviderError, TemplateError
from domain.templates import TemplateLibrary
from flows.parameters import check_references
from providers.automatic1111 import Automatic1111Config, Automatic1111Provider
from providers.chain import ProviderChain
from providers.openai import OpenAIConfig, OpenAIProvider
from providers.placeholder import PlaceholderConfig, PlaceholderProvider
from storage.db import Database
from generation.generate import generate_image
from generation.plan import plan_adhoc
from generation.record import record_planned
from tests.providers.servers.automatic1111 import A1111Server
from tests.providers.servers.common import photo
from tests.providers.servers.openai import KEY, OpenAIServer
from providers.registry import PROVIDERS

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SECRETS = {"OPENAI_API_KEY": KEY, "AUTOMATIC1111_AUTH": "artist:s3cret"}


def library_with(tmp_path: Path, **files: str) -> Path:
    """A copy of the shipped templates plus ``files`` (relative path -> YAML text)."""
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def png_file(path: Path, colour: tuple[int, int, int] | None = None) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if colour is None:
        data = photo(512, 512, "rocket")
    else:
        buffer = io.BytesIO()
        Image.new("RGB", (512, 512), colour).save(buffer, "PNG")
        data = buffer.getvalue()
    path.write_bytes(data)
    return data


def chain_of(openai: OpenAIServer, a1111: A1111Server) -> ProviderChain:
    secrets = Secrets(_env_file=None, provider_secrets=SECRETS)  # type: ignore[call-arg]
    return ProviderChain(
        [
            OpenAIProvider(config=OpenAIConfig(base_url=f"{openai.url}/v1", timeout_s=10), secrets=secrets),
            Automatic1111Provider(config=Automatic1111Config(enabled=True, base_url=a1111.url, timeout_s=10), secrets=secrets),
            PlaceholderProvider(config=PlaceholderConfig(), secrets=secrets),
        ],
        retry=RetryConfig(backoff_s=0.0),
    )


PINNED = """name: pinned-mug
category: food
prompt: "a ceramic mug of cocoa on a wooden table"
parameters: {quality: hd, format: landscape}
provider: automatic1111
model: sd_xl_base_1.0
loras: {food_detail: 0.7}
seed: 4242
"""
IMG2IMG = """name: blue-mug
category: food
prompt: "the same mug, glazed in cobalt blue"
parameters: {format: square}
reference_image: refs/mug.png
mask: refs/mug-mask.png
strength: 0.65
"""


def test_pinned_provider_model_loras_and_seed_reach_the_provider(tmp_path: Path) -> None:
    folder = library_with(tmp_path, **{"food/pinned-mug.yaml": PINNED})
    library = TemplateLibrary.load(folder)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    slots = [ImageSlot("adhoc", date(2026, 11, 29), "t-pinned-mug", 0, "food", template="pinned-mug")]
    pk = record_planned(db, library, slots)[0]
    with OpenAIServer() as openai, A1111Server(auth="artist:s3cret") as a1111:
        row = generate_image(db, chain_of(openai, a1111), pk, spool_dir=tmp_path / "spool", policy=PolicyConfig())
        sent = a1111.requests[0].json()
        assert openai.requests == []  # never called: the template pins automatic1111
    assert row.status == "generated" and row.provider == "automatic1111" and row.seed == 4242
    assert row.mapped_size == "1792x1024"
    assert sent["seed"] == 4242 and sent["override_settings"] == {"sd_model_checkpoint": "sd_xl_base_1.0"}
    assert sent["prompt"].endswith(" <lora:food_detail:0.7>") and sent["steps"] == 50
    skipped = db.attempts(pk)[0]
    assert (skipped.provider, skipped.status, skipped.error_class) == ("openai", "skipped", "unsupported")
    assert "pins provider automatic1111" in (skipped.error or "")


def test_reference_image_and_mask_from_the_template_folder(tmp_path: Path) -> None:
    folder = library_with(tmp_path, **{"food/blue-mug.yaml": IMG2IMG})
    init = png_file(folder / "refs" / "mug.png")
    mask = png_file(folder / "refs" / "mug-mask.png", (255, 255, 255))
    library = TemplateLibrary.load(folder)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pk = record_planned(db, library, [ImageSlot("adhoc", date(2026, 11, 29), "t-blue", 0, "food", template="blue-mug")])[0]
    assert db.get(pk).request_options == {"reference_image": str(folder / "refs" / "mug.png"), "mask": str(folder / "refs" / "mug-mask.png"), "strength": 0.65}
    with OpenAIServer() as openai, A1111Server(auth="artist:s3cret") as a1111:
        row = generate_image(db, chain_of(openai, a1111), pk, spool_dir=tmp_path / "spool", policy=PolicyConfig())
        sent = a1111.requests[0]
        assert openai.requests == []
    assert row.status == "generated" and row.provider == "automatic1111"
    assert sent.path == "/sdapi/v1/img2img" and sent.json()["denoising_strength"] == 0.65
    assert base64.b64decode(sent.json()["init_images"][0]) == init and base64.b64decode(sent.json()["mask"]) == mask
    skipped = db.attempts(pk)[0]
    assert skipped.status == "skipped" and f"openai {OpenAIProvider.default_model} cannot inpaint" in (skipped.error or "")


def test_adhoc_reference_overrides_and_checks(tmp_path: Path) -> None:
    folder = library_with(tmp_path)
    png_file(folder / "refs" / "chair.png")
    check_references("refs/chair.png", None, 0.4, folder)
    check_references("https://example.com/chair.png", None, None, folder)
    for args, message in (
        (("../secret.png", None, None), "reference_image"),
        (("refs/none.png", None, None), "no such file"),
        (("/etc/passwd", None, None), "inside the templates folder"),
        ((None, "refs/chair.png", None), "needs the parameter 'reference_image'"),
        (("file:///etc/passwd", None, None), "reference_image"),
    ):
        with pytest.raises(TemplateError, match=message):
            check_references(*args, folder=folder)  # type: ignore[misc]
    slots = plan_adhoc("pasta-dish", "food", 2, date(2026, 11, 29), "b1", reference_image="refs/chair.png", strength=0.4)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pks = record_planned(db, TemplateLibrary.load(folder), slots)
    assert [db.get(pk).request_options for pk in pks] == [{"reference_image": str(folder / "refs" / "chair.png"), "strength": 0.4}] * 2


def test_a_missing_reference_fails_the_image_with_a_clear_line(tmp_path: Path) -> None:
    folder = library_with(tmp_path, **{"food/blue-mug.yaml": IMG2IMG})
    png_file(folder / "refs" / "mug.png")
    png_file(folder / "refs" / "mug-mask.png", (255, 255, 255))
    library = TemplateLibrary.load(folder)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pk = record_planned(db, library, [ImageSlot("adhoc", date(2026, 11, 29), "t-blue", 0, "food", template="blue-mug")])[0]
    (folder / "refs" / "mug.png").write_bytes(b"<html>not a picture</html>")
    with OpenAIServer() as openai, A1111Server(auth="artist:s3cret") as a1111:
        row = generate_image(db, chain_of(openai, a1111), pk, spool_dir=tmp_path / "spool", policy=PolicyConfig())
        assert a1111.requests == [] and openai.requests == []
    assert row.status == "failed" and row.error and row.error.startswith("reference image:") and "not an image" in row.error


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("provider: nobody\n", "'nobody': unknown provider"),
        ("model: dall-e-3\n", "needs a provider"),
        ("reference_image: ../../etc/passwd\n", "inside the templates folder"),
        ("reference_image: refs/missing.png\n", "no such file"),
        ("mask: refs/mask.png\n", "need a reference_image"),
        ("seed: -1\n", "seed"),
        ("loras: {x: 9}\n", "loras"),
    ],
)
def test_bad_pins_are_one_clear_line(tmp_path: Path, extra: str, message: str) -> None:
    folder = library_with(tmp_path, **{"food/bad.yaml": 'name: bad\ncategory: food\nprompt: "a plate"\n' + extra})
    _, problems = TemplateLibrary.validate(folder, providers=PROVIDERS)
    assert len(problems) == 1 and "bad.yaml" in problems[0] and message in problems[0], problems


def test_the_adhoc_run_form_offers_reference_mask_and_strength() -> None:
    """The Prefect UI builds the run form from the flow's parameter schema."""
    from prefect.utilities.callables import parameter_schema

    from flows.adhoc import generate

    schema = parameter_schema(generate.fn).model_dump_for_openapi()
    properties = schema["properties"]
    assert {"reference_image", "mask", "strength", "style_image", "control_image"} <= set(properties)
    assert "reference_image" not in schema.get("required", []) and "style_image" not in schema.get("required", [])
    strength = properties["strength"]
    assert "anyOf" not in strength  # a plain number, -1 meaning the template's own (no None toggle)
    assert (strength["minimum"], strength["maximum"], strength["default"]) == (-1.0, 1.0, -1.0)
    assert "templates folder" in " ".join(properties["reference_image"].get("description", "").split())


def _png_header(width: int, height: int) -> bytes:
    """A PNG's signature, IHDR (RFC 2083 section 4.1.1) for a ``width`` x ``height`` RGB picture
    and an empty IDAT: the header of a picture whose pixels are never read."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda path: path.write_bytes(_png_header(8000, 8000)), "8000x8000 pixels is over the 40000000-pixel limit"),
        (lambda path: path.write_bytes(_png_header(1, 200_000_000)), "pixel limit"),  # past Pillow's own bomb limit
        (lambda path: (path.touch(), os.truncate(path, 21 * 1024 * 1024)), "bytes is over the 20971520-byte limit"),  # sparse
    ],
)
def test_an_oversized_reference_is_refused_at_validate_time(tmp_path: Path, write: Callable[[Path], object], message: str) -> None:
    folder = library_with(tmp_path, **{"food/big.yaml": 'name: big\ncategory: food\nprompt: "a plate"\nreference_image: refs/big.png\n'})
    (folder / "refs").mkdir()
    write(folder / "refs" / "big.png")
    _, problems = TemplateLibrary.validate(folder, providers=PROVIDERS)
    assert len(problems) == 1 and "big.yaml" in problems[0] and "'reference_image'" in problems[0], problems
    assert message in problems[0], problems
    png_file(folder / "refs" / "big.png")  # 512x512: within the bounds
    assert TemplateLibrary.validate(folder, providers=PROVIDERS)[1] == []


BRANDED = """name: branded-mug
category: food
prompt: "the brand's mug on a wooden table"
parameters: {format: square}
controlnet:
  - {image: refs/logo-edges.png, module: canny, model: "control_v11p_sd15_canny [d14c016b]", weight: 0.8,
     guidance_start: 0.1, guidance_end: 0.9}
  - {image: refs/layout-depth.png, model: "control_v11f1p_sd15_depth [cfd03158]"}
hires_fix: {scale: 1.5, upscaler: R-ESRGAN 4x+, denoising_strength: 0.35}
"""


def test_controlnet_units_and_hires_fix_reach_automatic1111_and_others_skip(tmp_path: Path) -> None:
    folder = library_with(tmp_path, **{"food/branded-mug.yaml": BRANDED})
    edges, depth = png_file(folder / "refs" / "logo-edges.png"), png_file(folder / "refs" / "layout-depth.png", (90, 90, 90))
    library = TemplateLibrary.load(folder)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pk = record_planned(db, library, [ImageSlot("adhoc", date(2026, 11, 29), "t-brand", 0, "food", template="branded-mug")])[0]
    with OpenAIServer() as openai, A1111Server(auth="artist:s3cret") as a1111:
        row = generate_image(db, chain_of(openai, a1111), pk, spool_dir=tmp_path / "spool", policy=PolicyConfig())
        sent = a1111.requests[0].json()
        assert openai.requests == []  # it cannot apply the units: skipped, never called
    assert row.status == "generated" and row.provider == "automatic1111", row.error
    first, second = sent["alwayson_scripts"]["controlnet"]["args"]
    assert base64.b64decode(first["image"]) == edges and base64.b64decode(second["image"]) == depth
    assert (first["module"], first["model"], first["weight"], first["guidance_start"], first["guidance_end"]) == (
        "canny",
        "control_v11p_sd15_canny [d14c016b]",
        0.8,
        0.1,
        0.9,
    )
    assert (second["module"], second["weight"], second["guidance_start"], second["guidance_end"]) == ("none", 1.0, 0.0, 1.0)
    assert first["enabled"] is True and second["enabled"] is True
    assert (sent["enable_hr"], sent["hr_scale"], sent["hr_upscaler"], sent["denoising_strength"]) == (True, 1.5, "R-ESRGAN 4x+", 0.35)
    skipped = db.attempts(pk)[0]
    assert (skipped.provider, skipped.status, skipped.error_class) == ("openai", "skipped", "unsupported")
    assert ("cannot apply ControlNet units (canny/control_v11p_sd15_canny [d14c016b], none/control_v11f1p_sd15_depth [cfd03158])") in (skipped.error or "")


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ("{image: refs/a.png, model: m, guidance_start: 0.9, guidance_end: 0.2}", "guidance_start 0.9 must be below guidance_end 0.2"),
        ("{image: refs/a.png, model: m, weight: 3}", "less than or equal to 2"),
        ("{image: refs/a.png}", "model"),
        ("{image: refs/a.png, model: m, module: 'canny; rm'}", "string should match pattern"),
    ],
)
def test_bad_controlnet_units_are_refused_when_the_templates_load(tmp_path: Path, unit: str, message: str) -> None:
    folder = library_with(tmp_path, **{"food/bad-unit.yaml": f"name: bad-unit\ncategory: food\nprompt: a mug\ncontrolnet: [{unit}]\n"})
    _, problems = TemplateLibrary.validate(folder)
    assert len(problems) == 1 and "bad-unit" in problems[0] and message.lower() in problems[0].lower(), problems


def test_a_missing_control_image_is_said_when_the_templates_load(tmp_path: Path) -> None:
    folder = library_with(tmp_path, **{"food/branded-mug.yaml": BRANDED})
    _, problems = TemplateLibrary.validate(folder)
    assert len(problems) == 2 and "field 'controlnet[0].image'" in problems[0] and "logo-edges.png" in problems[0], problems
    with pytest.raises(TemplateError, match="logo-edges.png"):
        TemplateLibrary.load(folder)


STYLED = """name: styled-mug
category: food
prompt: "the brand's mug on a wooden table"
parameters: {format: square}
controlnet:
  - {image: refs/logo-edges.png, module: canny, model: "control_v11p_sd15_canny [d14c016b]"}
ip_adapter: {image: refs/brand-look.png, model: "ip-adapter_sd15 [6a3f6166]", weight: 0.7}
"""


def test_an_ip_adapter_style_reference_reaches_automatic1111_as_a_unit_and_others_skip(tmp_path: Path) -> None:
    folder = library_with(tmp_path, **{"food/styled-mug.yaml": STYLED})
    png_file(folder / "refs" / "logo-edges.png")
    look = png_file(folder / "refs" / "brand-look.png", (200, 40, 90))
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pk = record_planned(db, TemplateLibrary.load(folder), [ImageSlot("adhoc", date(2026, 11, 29), "t-style", 0, "food", template="styled-mug")])[0]
    with OpenAIServer() as openai, A1111Server() as a1111:
        row = generate_image(db, chain_of(openai, a1111), pk, spool_dir=tmp_path / "spool", policy=PolicyConfig())
        sent = a1111.requests[0].json()
        assert openai.requests == []
    assert row.status == "generated" and row.provider == "automatic1111", row.error
    control, style = sent["alwayson_scripts"]["controlnet"]["args"]
    assert control["model"] == "control_v11p_sd15_canny [d14c016b]"
    assert (style["module"], style["model"], style["weight"], style["enabled"]) == ("ip-adapter_clip_sd15", "ip-adapter_sd15 [6a3f6166]", 0.7, True)
    assert base64.b64decode(style["image"]) == look
    skipped = db.attempts(pk)[0]
    assert (skipped.provider, skipped.status, skipped.error_class) == ("openai", "skipped", "unsupported")


def test_an_ip_adapter_model_with_a_controlnet_preprocessor_is_the_servers_error() -> None:
    wrong = StyleInput(StyleReference(image="refs/a.png", model="ip-adapter_sd15 [6a3f6166]", module="canny"), photo(64, 64))
    with A1111Server() as a1111:
        provider = Automatic1111Provider(config=Automatic1111Config(enabled=True, base_url=a1111.url), secrets=Secrets(_env_file=None))  # type: ignore[call-arg]
        with pytest.raises(ProviderError, match="does not fit model"):
            provider.generate(GenerationRequest(prompt="a mug", width=512, height=512, seed=1, style_reference=wrong))


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("{image: ../outside.png, model: m}", "must be a path inside the templates folder"),
        ("{image: refs/look.png, model: m, weight: 2.5}", "less than or equal to 2"),
        ("{image: refs/look.png}", "model"),
        ("{image: refs/missing.png, model: m}", "field 'ip_adapter.image'"),
    ],
)
def test_bad_ip_adapter_references_are_refused_when_the_templates_load(tmp_path: Path, field: str, message: str) -> None:
    folder = library_with(tmp_path, **{"food/bad-style.yaml": f"name: bad-style\ncategory: food\nprompt: a mug\nip_adapter: {field}\n"})
    png_file(folder / "refs" / "look.png")
    _, problems = TemplateLibrary.validate(folder)
    assert len(problems) == 1 and "bad-style" in problems[0] and message.lower() in problems[0].lower(), problems


def test_ad_hoc_style_and_control_images_replace_the_templates_and_pass_the_gate(tmp_path: Path) -> None:
    """The ad-hoc form's ``style_image`` / ``control_image`` (flows/adhoc.py) replace the
    template's IP-Adapter image and first control image (the template names the models); every
    picture sent goes through the image classifier: a style image it flags refuses the request
    before any provider call."""
    from config.imaging import ImageSafetyConfig
    from flows.parameters import check_brand_images

    folder = library_with(tmp_path, **{"food/styled-mug.yaml": STYLED, "food/plain.yaml": "name: plain\ncategory: food\nprompt: a mug\n"})
    png_file(folder / "refs" / "logo-edges.png")
    png_file(folder / "refs" / "brand-look.png", (200, 40, 90))
    campaign = png_file(folder / "refs" / "campaign-look.png", (10, 120, 200))
    layout = png_file(folder / "refs" / "campaign-layout.png", (250, 250, 250))
    (folder / "refs" / "portrait.png").write_bytes(photo(512, 512, "astronaut"))
    library = TemplateLibrary.load(folder)
    check_brand_images("refs/campaign-look.png", "refs/campaign-layout.png", library.get("styled-mug"), folder)
    with pytest.raises(TemplateError, match="parameter 'style_image': template 'plain' declares no ip_adapter"):
        check_brand_images("refs/campaign-look.png", None, library.get("plain"), folder)
    with pytest.raises(TemplateError, match="parameter 'control_image'"):
        check_brand_images(None, "../outside.png", library.get("styled-mug"), folder)

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    day = date(2026, 11, 29)
    [pk] = record_planned(
        db, library, plan_adhoc("styled-mug", "food", 1, day, "campaign", style_image="refs/campaign-look.png", control_image="refs/campaign-layout.png")
    )
    [flagged] = record_planned(db, library, plan_adhoc("styled-mug", "food", 1, day, "flagged", style_image="refs/portrait.png"))
    policy = PolicyConfig(image_safety=ImageSafetyConfig(blocked_classes=["FACE_FEMALE"]))
    with OpenAIServer() as openai, A1111Server() as a1111:
        row = generate_image(db, chain_of(openai, a1111), pk, spool_dir=tmp_path / "spool", policy=policy)
        sent = a1111.requests[0].json()
        refused = generate_image(db, chain_of(openai, a1111), flagged, spool_dir=tmp_path / "spool", policy=policy)
        calls = [r for r in a1111.requests if r.path.endswith("2img")]
    assert row.status == "generated", row.error
    control, style = sent["alwayson_scripts"]["controlnet"]["args"]
    assert base64.b64decode(control["image"]) == layout and control["model"] == "control_v11p_sd15_canny [d14c016b]"
    assert base64.b64decode(style["image"]) == campaign and style["model"] == "ip-adapter_sd15 [6a3f6166]"
    assert refused.status == "blocked" and (refused.error or "").startswith("content policy: style image image safety: FACE_FEMALE"), refused.error
    assert len(calls) == 1  # the flagged style image never reached the provider
