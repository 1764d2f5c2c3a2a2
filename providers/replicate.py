"""Replicate HTTP API v1 (https://replicate.com/docs/reference/http; the official client
replicate-python's replicate/prediction.py, replicate/model.py and replicate/version.py).

Which route:

* an official model (``black-forest-labs/flux-schnell`` ...: always on, billed per output
  image) runs by name: ``POST /v1/models/{owner}/{name}/predictions {"input": ...}``;
* any other model (``stability-ai/stable-diffusion``, ``lucataco/realistic-vision-v5.1``)
  runs by version: ``POST /v1/predictions {"version": "<id>", "input": ...}``. The version
  is pinned (``model: owner/name:<id>`` or ``versions: {owner/name: <id>}``) or resolved
  from ``GET /v1/models/{owner}/{name}`` -> ``latest_version.id`` and cached.

The model's inputs are read from its version's OpenAPI schema
(``openapi_schema.components.schemas.Input``: types, enums, minimum / maximum, via
``allOf``/``$ref``) and the request is mapped onto them (providers/spec.py): nearest
``width`` / ``height`` choice or ``aspect_ratio``, steps and guidance clamped, inputs
the model lacks left out. ``Prefer: wait=N`` lets most predictions finish inside the
create call; otherwise ``urls.get`` is polled until ``timeout_s``, when ``POST
/v1/predictions/{id}/cancel`` stops billing. Output URLs go through the SSRF-safe
downloader.

Errors are ``application/problem+json`` ``{title, detail, status}`` (422 adds
``invalid_fields``; 429 ``retry_after``). A prediction that ends without an image
(``failed``, ``canceled``, ``aborted``; the ``error`` string carries Replicate's
``E####`` code when it has one, https://replicate.com/docs/reference/error-codes) is
classified by ``failure``: "flagged as sensitive (E005)" is a content-filter
rejection (https://replicate.com/docs/topics/models/errors); E1000 (unknown, "try
retrying"), E6716 (timeout starting) and any error asking for a retry are transient,
as are ``canceled`` and ``aborted``; any other failure (the model's own exception,
E1001 out of memory for this input) is deterministic for the same input and version
(the official client raises it as ``ModelError``, "an error from user's code in a
model"): a rejection, so the chain moves on instead of paying for it again.

Cost (https://replicate.com/pricing, https://replicate.com/docs/topics/billing):
official models per output image; other models by GPU time, ``metrics.predict_time``
x the price per second of the hardware the model runs on (``hardware`` in the config,
else the price table's ``model_hardware``, else ``default_hardware``). A failed or
canceled prediction is billed too: "terminated predictions (with a status of
``succeeded``, ``failed``, or ``canceled``) will include a ``metrics`` object with a
``predict_time`` property showing the amount of CPU or GPU time, in seconds, that the
prediction used while running" (predictions.get, https://replicate.com/docs/reference/http),
public models are billed for "the time it's active processing your requests" (billing),
and a prediction canceled after it started is billed "for the time the prediction ran
before it was canceled", one that never started (``aborted``) is not
(https://replicate.com/docs/topics/predictions/lifecycle). ``billed_usd`` turns such a
prediction into the USD its ProviderError carries (``ProviderError.billed_usd``), which
the chain counts on the attempt, the budget settlement and the image.

httpx rather than the ``replicate`` client: the client drops the ``retry_after`` hint
from its errors and retries polls on its own, both of which the chain needs to see.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import Field

from domain.model import GenerationRequest, GenerationResult
from domain.errors import ContentFilteredError, InvalidOutputError, ProviderError, RejectedProviderError, TransientProviderError
from providers.base import Provider, ProviderCheck, job_submitted, json_object, poll_until, result_from_bytes
from providers.httperrors import raise_for_status
from providers.netguard import guard_for, guarded_client
from providers.reference import crop_to_ratio
from providers.spec import Mapped, ModelSpec, PriceTable, ProviderConfig, map_request, price_from_table

FILTER_MARKERS = ("E005", "flagged as sensitive", "NSFW")
#: A failed prediction whose error holds one of these may succeed if run again
#: (https://replicate.com/docs/reference/error-codes: E1000 unknown, "try retrying";
#: E6716 timeout starting); compared lower-case.
TRANSIENT_MARKERS = ("e1000", "e6716", "retry")
#: Statuses of a prediction that will not change any more.
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
VERSION_ID = re.compile(r"^[0-9a-f]{64}$")

#: Models Replicate runs as "official models" (by name, priced per output image).
OFFICIAL_MODELS = frozenset(
    {
        "black-forest-labs/flux-schnell",
        "black-forest-labs/flux-dev",
        "black-forest-labs/flux-1.1-pro",
        "black-forest-labs/flux-pro",
        "stability-ai/stable-diffusion-3.5-large",
        "stability-ai/stable-diffusion-3.5-medium",
        "ideogram-ai/ideogram-v2",
        "recraft-ai/recraft-v3",
    }
)


class ReplicateConfig(ProviderConfig):
    """``providers.replicate``.

    ``model``: ``owner/name`` or ``owner/name:<64-hex version>``; ``versions``: pinned
    versions by model; ``official_models``: more models to run by name (beyond the
    built-in list); ``hardware``: the GPU of a time-billed model (a ``GET /v1/hardware``
    sku: ``gpu-t4``, ``gpu-l40s``, ``gpu-a100-large`` ...), ``default_hardware`` for
    models not listed anywhere. ``wait_s``: ``Prefer: wait=N`` (1..60); then ``urls.get``
    is polled every ``poll_interval_s`` until ``timeout_s``. Token: ``REPLICATE_API_TOKEN``.
    """

    base_url: str = "https://api.replicate.com"
    model: str | None = "stability-ai/stable-diffusion"
    versions: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(default_factory=dict)
    official_models: list[str] = Field(default_factory=list)
    hardware: dict[str, str] = Field(default_factory=dict)
    default_hardware: str = "gpu-a100-large"
    wait_s: Annotated[int, Field(ge=1, le=60)] = 60
    poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0


#: Inputs of the well-known models, used until their OpenAPI schema has been read.
_SD_SIDES = tuple(range(64, 1025, 64))
_FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")


#: Official models whose output takes the reference image's aspect ratio, not the requested one
#: (replicate/cog-flux predict.py: with ``image``, width and height come from the image).
FOLLOWS_REFERENCE = frozenset({"black-forest-labs/flux-dev"})
#: Replicate recommends data URIs for files under 1 MB only; larger inputs go through
#: ``POST /v1/files`` (https://replicate.com/docs/topics/predictions/input-files).
DATA_URI_MAX_BYTES = 1_000_000


def _content_type(image: bytes) -> str:
    return "image/jpeg" if image.startswith(b"\xff\xd8") else ("image/webp" if image[8:12] == b"WEBP" else "image/png")


def _data_url(image: bytes) -> str:
    kind = "jpeg" if image.startswith(b"\xff\xd8") else ("webp" if image[8:12] == b"WEBP" else "png")
    return f"data:image/{kind};base64,{base64.b64encode(image).decode()}"


def _resolve(node: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A schema property with its ``allOf`` / ``$ref`` (Cog's enums) merged in."""
    merged = {k: v for k, v in node.items() if k not in ("allOf", "$ref")}
    refs = [node] if "$ref" in node else []
    refs += [part for part in node.get("allOf") or [] if isinstance(part, dict)]
    for part in refs:
        ref = part.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            target = components.get(ref.rsplit("/", 1)[1]) or {}
            merged = {**target, **merged}
        elif isinstance(part, dict):
            merged = {**part, **merged}
    return merged


class InputSchema:
    """A Replicate model version's ``Input`` schema: its properties (refs resolved) and the
    ModelSpec they describe."""

    def __init__(self, properties: dict[str, dict[str, Any]]) -> None:
        self.properties = properties

    @classmethod
    def from_openapi(cls, openapi: dict[str, Any]) -> InputSchema:
        """From a version's ``openapi_schema`` (InvalidOutputError-free: missing parts give {})."""
        components = ((openapi or {}).get("components") or {}).get("schemas") or {}
        raw = (components.get("Input") or {}).get("properties") or {}
        return cls({name: _resolve(node, components) for name, node in raw.items() if isinstance(node, dict)})

    def has(self, name: str) -> bool:
        return name in self.properties

    def _range(self, name: str) -> tuple[float, float] | None:
        prop = self.properties.get(name)
        if prop is None:
            return None
        return float(prop.get("minimum", 0)), float(prop.get("maximum", 1_000_000))

    def steps_field(self) -> str | None:
        """The model's name for the number of denoising steps (``num_inference_steps`` or ``steps``)."""
        return next((n for n in ("num_inference_steps", "steps") if self.has(n)), None)

    def guidance_field(self) -> str | None:
        """The model's name for classifier-free guidance (``guidance_scale`` or ``guidance``)."""
        return next((n for n in ("guidance_scale", "guidance") if self.has(n)), None)

    def spec(self) -> ModelSpec:
        """The ModelSpec this schema describes."""
        ratio = self.properties.get("aspect_ratio", {})
        ratios = tuple(str(r) for r in ratio.get("enum", []) if re.fullmatch(r"\d+:\d+", str(r)))
        width = self.properties.get("width", {})
        sides = tuple(int(v) for v in width.get("enum", []) if isinstance(v, int))
        steps_name = self.steps_field()
        steps = self._range(steps_name) if steps_name else None
        guidance_name = self.guidance_field()
        guidance = self._range(guidance_name) if guidance_name else None
        megapixels = self.properties.get("megapixels", {}).get("default")
        common: dict[str, Any] = {
            "steps": (int(steps[0]) or 1, int(steps[1])) if steps else None,
            "guidance": guidance,
            "negative_prompt": self.has("negative_prompt"),
            "img2img": self.has("image") or self.has("init_image"),
            "inpainting": self.has("mask"),
        }
        if ratios and not self.has("width"):
            return ModelSpec(aspect_ratios=ratios, megapixels=float(megapixels) if megapixels else 1.0, **common)
        if sides:
            return ModelSpec(side_choices=sides, **common)
        if self.has("width"):
            low, high = self._range("width") or (64.0, 2048.0)
            return ModelSpec(side_range=(int(low), int(high)), side_multiple=8, **common)
        return ModelSpec(side_range=(64, 2048), **common)


class ReplicateProvider(Provider):
    """Predictions on Replicate (SD, realistic-vision, FLUX ...)."""

    name: ClassVar[str] = "replicate"
    display_name: ClassVar[str] = "Replicate"
    Config = ReplicateConfig
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"api_token": ("REPLICATE_API_TOKEN",)}
    models: ClassVar[tuple[str, ...]] = (
        "stability-ai/stable-diffusion",
        "lucataco/realistic-vision-v5.1",
        "black-forest-labs/flux-schnell",
        "black-forest-labs/flux-dev",
    )
    default_model: ClassVar[str] = "stability-ai/stable-diffusion"
    price_table: ClassVar[PriceTable] = PriceTable(
        source_url="https://replicate.com/pricing",
        checked="2026-11-29",
        # official models: USD per output image
        prices={
            "black-forest-labs/flux-schnell": 0.003,
            "black-forest-labs/flux-dev": 0.025,
            "black-forest-labs/flux-1.1-pro": 0.04,
            "black-forest-labs/flux-pro": 0.055,
            "stability-ai/stable-diffusion-3.5-large": 0.065,
            "stability-ai/stable-diffusion-3.5-medium": 0.035,
            "ideogram-ai/ideogram-v2": 0.08,
            "recraft-ai/recraft-v3": 0.04,
        },
        # other models: USD per second of the hardware they run on (GET /v1/hardware skus)
        hardware_usd_per_second={
            "cpu": 0.0001,
            "gpu-t4": 0.000225,
            "gpu-l40s": 0.000975,
            "gpu-a40-small": 0.000575,
            "gpu-a40-large": 0.000725,
            "gpu-a100-large": 0.0014,
            "gpu-h100": 0.001525,
        },
        model_hardware={"stability-ai/stable-diffusion": "gpu-a100-large", "lucataco/realistic-vision-v5.1": "gpu-a40-large"},
        typical_seconds={"stability-ai/stable-diffusion": 4.0, "lucataco/realistic-vision-v5.1": 8.0},
        note="official models per output image; others per second of GPU time (metrics.predict_time)",
    )
    #: Until a version's schema is read: stable-diffusion's width/height are a choice of 64..1024
    #: (cog-stable-diffusion predict.py), steps 1..500, guidance 1..20; flux-schnell takes an
    #: aspect_ratio, 1..4 steps, no guidance and no negative prompt.
    model_specs: ClassVar[dict[str, ModelSpec]] = {
        "stability-ai/stable-diffusion": ModelSpec(side_choices=_SD_SIDES, steps=(1, 500), guidance=(1.0, 20.0)),
        "lucataco/realistic-vision-v5.1": ModelSpec(side_range=(64, 1920), side_multiple=8, steps=(0, 100), guidance=(0.1, 30.0)),
        "black-forest-labs/flux-schnell": ModelSpec(aspect_ratios=_FLUX_RATIOS, steps=(1, 4), guidance=None, negative_prompt=False),
        "black-forest-labs/flux-dev": ModelSpec(aspect_ratios=_FLUX_RATIOS, steps=(1, 50), guidance=(0.0, 10.0), negative_prompt=False, img2img=True),
    }

    config: ReplicateConfig

    #: (base URL, model, version or "") -> (version id, InputSchema): read once per process.
    _schemas: ClassVar[dict[tuple[str, str, str], tuple[str, InputSchema]]] = {}
    _schemas_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *, config: ReplicateConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        token = self.secret("api_token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = guarded_client(guard_for(self, config.base_url), base_url=config.base_url.rstrip("/"), headers=headers, timeout=config.timeout_s)
        #: ``Prefer: wait=N`` blocks the create call up to N s: keep it inside our own timeout.
        self.wait_s = max(1, min(config.wait_s, int(config.timeout_s * 0.8)))

    # -- models, versions, schemas -------------------------------------------------------

    @staticmethod
    def split(model: str) -> tuple[str, str]:
        """``owner/name[:version]`` -> (``owner/name``, version or "")."""
        name, _, version = model.partition(":")
        return name, version

    def is_official(self, name: str) -> bool:
        """True when ``name`` runs as an official model (by name, billed per image)."""
        return name in OFFICIAL_MODELS or name in self.config.official_models

    def pinned_version(self, model: str) -> str:
        """The version pinned for ``model`` (in the id or in ``versions``), or ""."""
        name, version = self.split(model)
        return version or self.config.versions.get(name, "")

    def _key(self, model: str) -> tuple[str, str, str]:
        name, _ = self.split(model)
        return self.config.base_url.rstrip("/"), name, self.pinned_version(model)

    def schema(self, model: str) -> tuple[str, InputSchema]:
        """(version id, input schema) of ``model``: ``GET /v1/models/{owner}/{name}``
        (``latest_version``) or ``.../versions/{id}`` when pinned; cached per process.
        Raises the classified ProviderError of a failed call (404: unknown model, a rejection)."""
        key = self._key(model)
        with self._schemas_lock:
            cached = self._schemas.get(key)
        if cached is not None:
            return cached
        name, version = key[1], key[2]
        path = f"/v1/models/{name}/versions/{version}" if version else f"/v1/models/{name}"
        body = self.call_json(self._client, "GET", path, model)
        found = body if version else (body.get("latest_version") or {})
        version_id = str(found.get("id") or version)
        if not VERSION_ID.match(version_id) and not self.is_official(name):
            raise RejectedProviderError(f"model {name} has no runnable version (latest_version is empty)", provider=self.name, model=model)
        entry = (version_id, InputSchema.from_openapi(found.get("openapi_schema") or {}))
        with self._schemas_lock:
            self._schemas[key] = entry
        return entry

    def model_spec(self, model: str) -> ModelSpec:
        """The spec from the version's schema once read, else the built-in one."""
        with self._schemas_lock:
            cached = self._schemas.get(self._key(model))
        if cached is not None:
            return cached[1].spec()
        return self.model_specs.get(self.split(model)[0], self.default_spec)

    # -- money ------------------------------------------------------------------------------

    def per_second_usd(self, model: str) -> float | None:
        """USD per GPU second of a time-billed ``model`` (None for an official model)."""
        name, _ = self.split(model)
        if self.is_official(name):
            return None
        hardware = self.config.hardware.get(name) or self.price_table.model_hardware.get(name) or self.config.default_hardware
        return self.price_table.hardware_usd_per_second.get(hardware)

    def estimate_cost(self, request: GenerationRequest) -> float:
        """USD: ``cost_usd`` or a configured price, else the official model's price per
        image, else the hardware's price per second x the model's typical run time."""
        if self.config.cost_usd:
            return self.config.cost_usd
        name, _ = self.split(self.model_of(request))
        configured = price_from_table(self.config.prices_usd, name, request.quality_tier)
        if configured is not None:
            return configured
        per_second = self.per_second_usd(name)
        if per_second is not None:
            return round(per_second * self.price_table.typical_seconds.get(name, 10.0), 6)
        return self.price_table.lookup(name, request.quality_tier) or 0.0

    def max_cost(self, request: GenerationRequest, timeout_s: float | None = None) -> float:
        """Upper bound (USD): a time-billed model may run until the timeout is hit and the
        prediction cancelled: price per second x ``timeout_s`` (default: ``timeout_s`` of
        the config). Official models: the price per image."""
        per_second = self.time_billed(self.split(self.model_of(request))[0])
        if per_second is None:
            return self.estimate_cost(request)
        return round(per_second * (timeout_s if timeout_s is not None else self.config.timeout_s), 6)

    def time_billed(self, name: str) -> float | None:
        """USD per second when ``name`` is billed by GPU time with no price configured over
        it (``cost_usd`` / ``prices_usd``), else None (official: per image; or configured)."""
        per_second = self.per_second_usd(name)
        if per_second is None or self.config.cost_usd or price_from_table(self.config.prices_usd, name, "") is not None:
            return None
        return per_second

    @staticmethod
    def run_seconds(prediction: dict[str, Any]) -> float | None:
        """Seconds ``prediction`` ran on its hardware: ``metrics.predict_time``, else, once it
        has ended, ``completed_at`` - ``started_at`` (on the real service the two agree: a
        canceled prediction recorded by the official client's tests, replicate-python
        tests/cassettes/test_predictions_cancel[False].yaml, has started 11:15:15.375980,
        completed 11:15:15.504128 and predict_time 0.128148); None when neither is known."""
        predict_time = (prediction.get("metrics") or {}).get("predict_time")
        if isinstance(predict_time, (int, float)) and not isinstance(predict_time, bool) and predict_time >= 0:
            return float(predict_time)
        started, completed = prediction.get("started_at"), prediction.get("completed_at")
        if prediction.get("status") in TERMINAL and isinstance(started, str) and isinstance(completed, str):
            try:
                seconds = (datetime.fromisoformat(completed) - datetime.fromisoformat(started)).total_seconds()
            except ValueError:
                return None
            return seconds if seconds >= 0 else None
        return None

    def cost_of(self, prediction: dict[str, Any], request: GenerationRequest, model: str) -> float:
        """What a succeeded ``prediction`` is billed (USD): its run seconds
        (``run_seconds``) x price per second for a time-billed model when they are
        reported, else the estimate (official models: the price per image)."""
        per_second = self.time_billed(self.split(model)[0])
        seconds = self.run_seconds(prediction)
        if per_second is not None and seconds is not None:
            return round(seconds * per_second, 6)
        return self.estimate_cost(request)

    def billed_usd(self, prediction: dict[str, Any], request: GenerationRequest, model: str, *, ran_at_most_s: float | None = None) -> float | None:
        """USD Replicate bills for ``prediction``, which ended (or was left) without an image
        we could use:

        * ``succeeded`` (e.g. it finished just before our cancel): ``cost_of``;
        * ``aborted`` (never started): 0 (predictions/lifecycle: "No charge");
        * an official model (priced per output image): a failed or canceled prediction
          produced no image: 0; one failed by the content filter (E005), whose image may
          have been made and withheld: None, so the chain counts its estimate
          (``may_have_billed``: a filtered answer may have been billed);
        * a time-billed model: ``run_seconds`` (``metrics.predict_time``, which failed and
          canceled predictions report) x the hardware's price per second, rounded to
          1e-6 USD; ended with ``started_at`` null (never ran): 0; time unknown but
          ``ran_at_most_s`` given (our own cancel got no answer): that upper bound x the
          price per second; else the estimate (it may have run: counted, not guessed at 0);
        * a model priced in the configuration (``cost_usd`` / ``prices_usd``): that price
          once it may have run (its GPU time is billed even without an image), else 0.

        ``ran_at_most_s`` (seconds): the most the prediction can have run (the time since
        the last answer that still said ``starting``, or since the create call)."""
        status = prediction.get("status")
        if status == "succeeded":
            return self.cost_of(prediction, request, model)
        if status == "aborted":
            return 0.0
        name, _ = self.split(model)
        if self.per_second_usd(name) is None:  # official: per output image, and there is none
            error = str(prediction.get("error") or "")
            return None if any(marker in error for marker in FILTER_MARKERS) else 0.0
        never_ran = status in TERMINAL and "started_at" in prediction and prediction.get("started_at") is None
        per_second = self.time_billed(name)
        if per_second is None:  # a configured price per call
            return 0.0 if never_ran else self.estimate_cost(request)
        seconds = self.run_seconds(prediction)
        if seconds is not None:
            return round(seconds * per_second, 6)
        if never_ran:
            return 0.0
        if ran_at_most_s is not None:
            return round(max(0.0, ran_at_most_s) * per_second, 6)
        return self.estimate_cost(request)

    # -- the call -------------------------------------------------------------------------

    def create_call(self, request: GenerationRequest) -> tuple[str, dict[str, Any], Any]:
        """(path, JSON body, Mapped) of the create call for ``request`` (reads the schema)."""
        model = self.model_of(request)
        name, _ = self.split(model)
        version, schema = self.schema(model)
        mapped = map_request(schema.spec() if schema.properties else self.model_spec(model), request)
        data: dict[str, Any] = {"prompt": request.prompt}
        if not schema.properties:  # no schema published: send the common Cog inputs
            data.update(width=mapped.width, height=mapped.height, num_outputs=1)
            if mapped.num_inference_steps is not None:
                data["num_inference_steps"] = mapped.num_inference_steps
            if mapped.guidance_scale is not None:
                data["guidance_scale"] = mapped.guidance_scale
        else:
            self._schema_inputs(schema, mapped, request, data)
        if mapped.negative_prompt and (schema.has("negative_prompt") or not schema.properties):
            data["negative_prompt"] = mapped.negative_prompt
        if request.seed is not None:
            data["seed"] = request.seed
        if request.init_image is not None:
            mapped = self._reference_inputs(request, schema, name, mapped, data)
        if self.is_official(name) and not self.pinned_version(model):
            return f"/v1/models/{name}/predictions", {"input": data}, mapped
        return "/v1/predictions", {"version": version, "input": data}, mapped

    @staticmethod
    def _schema_inputs(schema: InputSchema, mapped: Mapped, request: GenerationRequest, data: dict[str, Any]) -> None:
        """Size, steps, guidance, outputs and format into ``data`` under the names the
        version's schema declares."""
        if mapped.aspect_ratio is not None:
            data["aspect_ratio"] = mapped.aspect_ratio
        elif schema.has("width") and schema.has("height"):
            data["width"], data["height"] = mapped.width, mapped.height
        steps_name = schema.steps_field()
        if steps_name and mapped.num_inference_steps is not None:
            data[steps_name] = mapped.num_inference_steps
        guidance_name = schema.guidance_field()
        if guidance_name and mapped.guidance_scale is not None:
            data[guidance_name] = mapped.guidance_scale
        if schema.has("num_outputs"):
            data["num_outputs"] = 1
        if schema.has("output_format"):
            allowed = [str(v) for v in schema.properties["output_format"].get("enum", [])]
            wanted = {"jpeg": "jpg"}.get(request.output_format, request.output_format)
            data["output_format"] = wanted if wanted in allowed or not allowed else ("png" if "png" in allowed else allowed[0])

    def _reference_inputs(self, request: GenerationRequest, schema: InputSchema, name: str, mapped: Mapped, data: dict[str, Any]) -> Mapped:
        """Put the reference image (and mask, strength) into ``data``; returns ``mapped``
        with a note when the reference was cropped: a model of ``FOLLOWS_REFERENCE``
        answers in the reference's aspect ratio, so the reference is centre-cropped to the
        requested one (providers/reference.py) and the output passes our check, never an
        image paid for and then discarded."""
        assert request.init_image is not None
        image = request.init_image
        if name in FOLLOWS_REFERENCE:
            image, note = crop_to_ratio(image, mapped.width, mapped.height)
            if note:
                mapped = replace(mapped, notes=(*mapped.notes, note))
        field = "image" if schema.has("image") or not schema.has("init_image") else "init_image"
        data[field] = self.file_input(image, self.model_of(request))
        if request.strength is not None:
            data["prompt_strength"] = request.strength
        if request.mask_image is not None:
            data["mask"] = self.file_input(request.mask_image, self.model_of(request))
        return mapped

    def file_input(self, image: bytes, model: str) -> str:
        """What a file input receives: a data URI for up to ``DATA_URI_MAX_BYTES`` bytes,
        else the ``urls.get`` of the file uploaded with ``POST /v1/files`` (multipart
        ``content``; free, https://replicate.com/docs/reference/http#files.create).
        Raises the classified ProviderError of a failed upload."""
        if len(image) <= DATA_URI_MAX_BYTES:
            return _data_url(image)
        kind = _content_type(image)
        answer = self.call_json(
            self._client, "POST", "/v1/files", model, files={"content": (f"reference.{kind.split('/')[1]}", image, kind)}, data={"type": kind}
        )
        url = str((answer.get("urls") or {}).get("get") or "")
        if not url:
            raise InvalidOutputError("invalid answer: the uploaded file has no urls.get", provider=self.name, model=model)
        return url

    def generate(self, request: GenerationRequest) -> GenerationResult:
        model = self.model_of(request)
        started = time.monotonic()
        path, body, mapped = self.create_call(request)
        prediction = self.call_json(self._client, "POST", path, model, json=body, headers={"Prefer": f"wait={self.wait_s}"})
        job_submitted(str(prediction.get("id") or ""))
        return self._wait(prediction, request, model, started, mapped)

    resumable: ClassVar[bool] = True

    def resume(self, job_id: str, request: GenerationRequest) -> GenerationResult:
        """Poll prediction ``job_id`` created by an earlier run (``GET /v1/predictions/{id}``,
        https://replicate.com/docs/reference/http#predictions.get) and take its output or
        its failure with what it was billed; nothing is created."""
        model = self.model_of(request)
        started = time.monotonic()
        prediction = self.call_json(self._client, "GET", f"{self.config.base_url.rstrip('/')}/v1/predictions/{job_id}", model)
        return self._wait(prediction, request, model, started, self.map(request))

    def _wait(self, prediction: dict[str, Any], request: GenerationRequest, model: str, started: float, mapped: Any) -> GenerationResult:
        """Poll ``prediction`` until it ends (cancelled on our timeout or a failure, billed
        what it ran), then its result."""
        deadline = started + self.config.timeout_s
        #: the prediction cannot have started running before this (monotonic) time
        not_before = started

        def poll() -> dict[str, Any]:
            """``urls.get``: the prediction's latest state (kept in ``prediction``, for the cancel)."""
            nonlocal prediction, not_before
            asked = time.monotonic()
            prediction = self.call_json(self._client, "GET", self._own_url(prediction, "get", model), model)
            if prediction.get("status") == "starting":
                not_before = asked
            return prediction

        def timed_out(last: dict[str, Any]) -> ProviderError:
            return TransientProviderError(
                f"timeout: prediction {last.get('id')} still {last.get('status')} after {self.config.timeout_s:.0f} s (cancelled)",
                provider=self.name,
                model=model,
            )

        try:
            poll_until(
                poll,
                lambda last: last.get("status") not in ("starting", "processing"),
                timed_out,
                deadline=deadline,
                interval_s=self.config.poll_interval_s,
                first=prediction,
            )
        except ProviderError as exc:
            # the prediction exists (created: 201): whatever went wrong since, its run is billed
            final = self.cancel(prediction, model) or prediction
            if exc.billed_usd is None:
                exc.billed_usd = self.billed_usd(final, request, model, ran_at_most_s=time.monotonic() - not_before)
            raise
        return self._result(prediction, request, model, started, mapped)

    def cancel(self, prediction: dict[str, Any], model: str) -> dict[str, Any] | None:
        """``POST urls.cancel`` so billing stops. Returns the prediction the cancel call
        answers (status ``canceled``, with ``metrics.predict_time`` once it had started),
        or None; a failure to cancel is logged, not raised."""
        try:
            response = self._client.post(self._own_url(prediction, "cancel", model), timeout=10.0)
            raise_for_status(response, provider=self.name, model=model)
            answer = json_object(response, provider=self.name, model=model)
        except (httpx.HTTPError, ProviderError) as exc:
            logging.getLogger("content_pipeline.providers").warning(
                "replicate: could not cancel the prediction (%s); it may still be billed", type(exc).__name__
            )
            return None
        return answer if answer.get("id") == prediction.get("id") else None

    def failure(self, prediction: dict[str, Any], request: GenerationRequest, model: str) -> ProviderError:
        """The classified ProviderError of a prediction that ended without an image
        (``failed``, ``canceled``, ``aborted``), carrying what it was billed
        (``billed_usd``): ContentFilteredError for E005; TransientProviderError for
        ``canceled`` / ``aborted`` and a failure that asks for a retry (E1000, E6716);
        RejectedProviderError for any other failure (deterministic: the same input on the
        same version fails the same way, so it is not paid for twice)."""
        status = prediction.get("status")
        error = str(prediction.get("error") or "")
        cls: type[ProviderError]
        if status == "failed" and any(marker in error for marker in FILTER_MARKERS):
            cls, message = ContentFilteredError, f"content filtered: {error[:200]}"
        elif status == "failed" and not any(marker in error.lower() for marker in TRANSIENT_MARKERS):
            cls, message = RejectedProviderError, f"prediction {prediction.get('id')} failed: {error[:200]}"
        else:
            cls, message = TransientProviderError, f"prediction {status}: {error[:200]}"
        return cls(message, provider=self.name, model=model, billed_usd=self.billed_usd(prediction, request, model))

    def _own_url(self, prediction: dict[str, Any], kind: str, model: str) -> str:
        """``urls.get`` / ``urls.cancel``, only when it points at the configured API (our
        token never goes elsewhere); else the documented path."""
        url = str((prediction.get("urls") or {}).get(kind) or "")
        base = self.config.base_url.rstrip("/")
        if url.startswith(base + "/"):
            return url
        suffix = "/cancel" if kind == "cancel" else ""
        return f"{base}/v1/predictions/{prediction.get('id')}{suffix}"

    def _result(self, prediction: dict[str, Any], request: GenerationRequest, model: str, started: float, mapped: Any) -> GenerationResult:
        """The GenerationResult of a succeeded ``prediction``; else its ``failure``. A
        succeeded prediction is billed whatever our checks then say of its output: an error
        while fetching or checking it carries ``cost_of`` (``billed_usd``)."""
        if prediction.get("status") != "succeeded":
            raise self.failure(prediction, request, model)
        cost = self.cost_of(prediction, request, model)
        try:
            output = prediction.get("output")
            url = output[0] if isinstance(output, list) and output else output
            if not isinstance(url, str):
                raise InvalidOutputError("invalid answer: prediction has no output URL", provider=self.name, model=model)
            data = self.downloader.fetch(url, provider=self.name, model=model)
            predict_time = (prediction.get("metrics") or {}).get("predict_time")
            found = re.search(r"[Uu]sing seed:?\s*(\d+)", str(prediction.get("logs") or ""))
            seed = int(found.group(1)) if found else request.seed
            return result_from_bytes(
                data,
                provider=self,
                request=request,
                model=model,
                seed=seed,
                cost_usd=cost,
                started=started,
                mapped=mapped,
                metadata={"prediction_id": prediction.get("id"), "predict_time": predict_time, "version": prediction.get("version")},
            )
        except ProviderError as exc:
            if exc.billed_usd is None:
                exc.billed_usd = cost
            raise

    def check(self) -> ProviderCheck:
        """``GET /v1/account`` (free): the token is valid."""
        response = self.probe_get(self._client, "/v1/account")
        if isinstance(response, ProviderCheck):
            return response
        return ProviderCheck(True, f"account {response.json().get('username', '?')}; model {self.model}")

    def close(self) -> None:
        self._client.close()
