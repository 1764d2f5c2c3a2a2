"""Replicate HTTP API v1 loopback server.

Protocol from https://replicate.com/docs/reference/http (predictions.create,
models.predictions.create, models.get, models.versions.get, predictions.get / cancel,
account.get) and the official client replicate-python (replicate/prediction.py,
replicate/model.py, replicate/exceptions.py: ``application/problem+json`` errors
``{title, detail, status}``). As on the real service:

* ``POST /v1/models/{owner}/{name}/predictions`` runs official models only; any other
  model answers 404 there and must be run by version through ``POST /v1/predictions``;
* an unknown version is a 422; inputs are validated against the version's OpenAPI
  ``Input`` schema (Cog: enums through ``allOf``/``$ref``, ``minimum`` / ``maximum``):
  a 422 ``Input validation failed`` with ``invalid_fields`` names each bad field;
* the schemas below follow the models' published versions: stability-ai/stable-diffusion
  (cog-stable-diffusion's predict.py: width / height a choice of 64..1024 by 64, steps
  1..500, guidance 1..20), lucataco/realistic-vision-v5.1 and the official
  black-forest-labs/flux-schnell (aspect_ratio, 1..4 steps, no width / height, no
  guidance, no negative prompt);
* a prediction object has the fields of predictions.get (``id``, ``model``, ``version``,
  ``input``, ``logs``, ``output``, ``data_removed``, ``error``, ``status``, ``created_at``,
  ``started_at``, ``completed_at``, ``metrics``, ``urls``), a ``starting`` one without the
  last four (the official client's recorded create answers); ``started_at`` is null on a
  terminated one that never left ``starting``; a terminated one (``succeeded``,
  ``failed`` or ``canceled``) carries ``metrics.predict_time`` (the CPU / GPU seconds it
  ran, what a time-billed model is billed) and ``metrics.total_time``, ``output`` null
  unless it succeeded and ``error`` the failure's string (predictions.get in
  https://replicate.com/docs/reference/http;
  the canceled prediction the official client recorded, replicate-python
  tests/cassettes/test_predictions_cancel[False].yaml: ``"status": "canceled"``,
  ``"metrics": {"predict_time": 0.128148, "total_time": 0.175128}``, ``"output": null``,
  ``started_at`` / ``completed_at`` set);
* failures (the script's modes): ``filtered`` fails with the E005 error
  (https://replicate.com/docs/topics/models/errors); ``model_error`` with the model's own
  exception (a traceback in ``logs``); ``oom`` with E1001 and ``unknown_error`` with E1000
  (https://replicate.com/docs/reference/error-codes defines the codes and what they mean;
  the sentences around them here are ours), each after ``predict_time`` seconds of GPU
  time; ``failed_no_metrics`` fails with ``metrics`` empty (older answers left
  predict_time out: replicate-swift pull request #4); ``never_started`` fails with E6716
  (timeout starting) before it ran: ``started_at`` null, no predict_time;
* ``POST urls.cancel`` answers the prediction ``canceled``: with ``predict_time`` when it
  had started, without (``started_at`` null) when it was still ``starting``.
"""

from __future__ import annotations

import base64
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from tests.providers.servers.common import NEGATIVE, PROMPT, RETRY_AFTER_S, ContractCase, ProtocolServer, Reply, Request, image_for, ratio_size

TOKEN = "r8_test_token"
SD_VERSION = "ac732df83cea7fff18b8472768c88ad041fa750ff7682a21affe81863cbe77e4"
RV_VERSION = "ac732df83cea7fff18b8472768c88ad041fa750ff7682a21affe81863cbe7777"
FLUX_VERSION = "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"
E005 = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
E1001 = "Model ran out of memory and was terminated (E1001)"
E1000 = "An unexpected error occurred. Please try again. (E1000)"
E6716 = "Timed out starting the prediction (E6716)"
MODEL_ERROR = "RuntimeError: Sizes of tensors must match except in dimension 1"
MODEL_TRACEBACK = (
    'Using seed: 4321\nTraceback (most recent call last):\n  File "/src/predict.py", line 112, in predict\n'
    "    output = self.pipe(**kwargs)\n" + MODEL_ERROR + "\n"
)
#: mode -> the error string of a prediction that fails that way
FAILURES = {"filtered": E005, "model_error": MODEL_ERROR, "oom": E1001, "unknown_error": E1000, "failed_no_metrics": MODEL_ERROR, "never_started": E6716}
FLUX_RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]


def _at(seconds: float) -> str:
    """The service's timestamp ``seconds`` after 2026-11-21T06:00:00Z (RFC 3339, microseconds, Z)."""
    moment = datetime(2026, 11, 21, 6, 0, tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _cog_schema(properties: dict[str, Any], enums: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI document shaped like Cog's: Input properties, enums as components."""
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "components": {"schemas": {"Input": {"type": "object", "title": "Input", "properties": properties}, **enums}},
    }


SD_SIDES = list(range(64, 1025, 64))
SD_SCHEMA = _cog_schema(
    {
        "prompt": {"type": "string", "title": "Prompt", "default": "a vision of paradise. unreal engine", "x-order": 0},
        "width": {"allOf": [{"$ref": "#/components/schemas/width"}], "default": 768, "x-order": 2},
        "height": {"allOf": [{"$ref": "#/components/schemas/height"}], "default": 768, "x-order": 1},
        "negative_prompt": {"type": "string", "title": "Negative Prompt", "x-order": 3},
        "num_outputs": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1, "x-order": 4},
        "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50, "x-order": 5},
        "guidance_scale": {"type": "number", "minimum": 1, "maximum": 20, "default": 7.5, "x-order": 6},
        "scheduler": {"allOf": [{"$ref": "#/components/schemas/scheduler"}], "default": "DPMSolverMultistep", "x-order": 7},
        "seed": {"type": "integer", "title": "Seed", "x-order": 8},
    },
    {
        "width": {"enum": SD_SIDES, "type": "integer", "title": "width", "description": "An enumeration."},
        "height": {"enum": SD_SIDES, "type": "integer", "title": "height", "description": "An enumeration."},
        "scheduler": {
            "enum": ["DDIM", "K_EULER", "DPMSolverMultistep", "K_EULER_ANCESTRAL", "PNDM", "KLMS"],
            "type": "string",
            "title": "scheduler",
            "description": "An enumeration.",
        },
    },
)
RV_SCHEMA = _cog_schema(
    {
        "prompt": {"type": "string", "default": "RAW photo, a portrait photo of a latina woman", "x-order": 0},
        "negative_prompt": {"type": "string", "x-order": 1},
        "width": {"type": "integer", "minimum": 0, "maximum": 1920, "default": 512, "x-order": 3},
        "height": {"type": "integer", "minimum": 0, "maximum": 1920, "default": 728, "x-order": 4},
        "steps": {"type": "integer", "minimum": 0, "maximum": 100, "default": 20, "x-order": 5},
        "guidance": {"type": "number", "minimum": 3.5, "maximum": 7, "default": 5, "x-order": 6},
        "seed": {"type": "integer", "default": 0, "x-order": 2},
    },
    {},
)
FLUX_SCHEMA = _cog_schema(
    {
        "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
        "aspect_ratio": {"allOf": [{"$ref": "#/components/schemas/aspect_ratio"}], "default": "1:1", "x-order": 1},
        "num_outputs": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1, "x-order": 2},
        "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 4, "default": 4, "x-order": 3},
        "seed": {"type": "integer", "x-order": 4},
        "output_format": {"allOf": [{"$ref": "#/components/schemas/output_format"}], "default": "webp", "x-order": 5},
        "output_quality": {"type": "integer", "minimum": 0, "maximum": 100, "default": 80, "x-order": 6},
        "disable_safety_checker": {"type": "boolean", "default": False, "x-order": 7},
        "go_fast": {"type": "boolean", "default": True, "x-order": 8},
        "megapixels": {"allOf": [{"$ref": "#/components/schemas/megapixels"}], "default": "1", "x-order": 9},
    },
    {
        "aspect_ratio": {"enum": FLUX_RATIOS, "type": "string", "title": "aspect_ratio", "description": "An enumeration."},
        "output_format": {"enum": ["webp", "jpg", "png"], "type": "string", "title": "output_format"},
        "megapixels": {"enum": ["1", "0.25"], "type": "string", "title": "megapixels"},
    },
)

FLUX_DEV_VERSION = "6e4a938f85952bdabcc15aa329178c4d681c52bf25a0342403287dc26944661d"
#: black-forest-labs/flux-dev's inputs (https://replicate.com/black-forest-labs/flux-dev/api/schema;
#: replicate/cog-flux predict.py): with ``image`` the output takes the image's aspect ratio and
#: ``aspect_ratio`` is ignored.
FLUX_DEV_SCHEMA = _cog_schema(
    {
        "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
        "aspect_ratio": {"allOf": [{"$ref": "#/components/schemas/aspect_ratio"}], "default": "1:1", "x-order": 1},
        "image": {"type": "string", "format": "uri", "title": "Image", "x-order": 2},
        "prompt_strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.8, "x-order": 3},
        "num_outputs": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1, "x-order": 4},
        "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 28, "x-order": 5},
        "guidance": {"type": "number", "minimum": 0, "maximum": 10, "default": 3, "x-order": 6},
        "seed": {"type": "integer", "x-order": 7},
        "output_format": {"allOf": [{"$ref": "#/components/schemas/output_format"}], "default": "webp", "x-order": 8},
        "go_fast": {"type": "boolean", "default": True, "x-order": 9},
        "megapixels": {"allOf": [{"$ref": "#/components/schemas/megapixels"}], "default": "1", "x-order": 10},
    },
    {
        "aspect_ratio": {"enum": FLUX_RATIOS, "type": "string", "title": "aspect_ratio", "description": "An enumeration."},
        "output_format": {"enum": ["webp", "jpg", "png"], "type": "string", "title": "output_format"},
        "megapixels": {"enum": ["1", "0.25"], "type": "string", "title": "megapixels"},
    },
)

#: owner/name -> (official?, version id, openapi schema)
MODELS: dict[str, tuple[bool, str, dict[str, Any]]] = {
    "stability-ai/stable-diffusion": (False, SD_VERSION, SD_SCHEMA),
    "lucataco/realistic-vision-v5.1": (False, RV_VERSION, RV_SCHEMA),
    "black-forest-labs/flux-schnell": (True, FLUX_VERSION, FLUX_SCHEMA),
    "black-forest-labs/flux-dev": (True, FLUX_DEV_VERSION, FLUX_DEV_SCHEMA),
}
#: Replicate's limit on a data URI input (https://replicate.com/docs/topics/predictions/input-files:
#: data URLs for files under 1 MB, the files API above); larger ones are refused here.
DATA_URI_LIMIT = 1_000_000


def _resolved(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    components = schema["components"]["schemas"]
    out = {}
    for name, prop in components["Input"]["properties"].items():
        merged = dict(prop)
        for part in prop.get("allOf", []):
            merged.update(components[part["$ref"].rsplit("/", 1)[1]])
        out[name] = merged
    return out


def invalid_fields(schema: dict[str, Any], data: dict[str, Any]) -> list[dict[str, str]]:
    """Cog's input validation: types, enums, minimum / maximum, required prompt."""
    props = _resolved(schema)
    problems = []
    for name, value in data.items():
        prop = props.get(name)
        if prop is None:
            continue  # Cog ignores inputs the model does not declare (with a warning in the logs)
        kind = prop.get("type")
        if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            problems.append({"type": "type", "field": f"input.{name}", "description": "Invalid type. Expected: integer"})
        elif kind == "number" and not isinstance(value, (int, float)):
            problems.append({"type": "type", "field": f"input.{name}", "description": "Invalid type. Expected: number"})
        elif "enum" in prop and value not in prop["enum"]:
            allowed = ", ".join(str(v) for v in prop["enum"])
            problems.append({"type": "enum", "field": f"input.{name}", "description": f"{name} must be one of the following: {allowed}"})
        elif "maximum" in prop and isinstance(value, (int, float)) and value > prop["maximum"]:
            problems.append({"type": "number_lte", "field": f"input.{name}", "description": f"Must be less than or equal to {prop['maximum']}"})
        elif "minimum" in prop and isinstance(value, (int, float)) and value < prop["minimum"]:
            problems.append({"type": "number_gte", "field": f"input.{name}", "description": f"Must be greater than or equal to {prop['minimum']}"})
    if not isinstance(data.get("prompt"), str):
        problems.append({"type": "required", "field": "input", "description": "prompt is required"})
    return problems


class ReplicateServer(ProtocolServer):
    """Replicate v1: models, versions, create (``Prefer: wait``), ``urls.get`` polling,
    cancel, output files, GET /v1/account. ``starting_polls``: how many GETs a prediction
    stays ``starting`` (not running yet; ``None``: until cancelled); then ``polls``: how
    many it stays ``processing`` (``None``: forever, until cancelled); ``predict_time``:
    the seconds it runs (``metrics.predict_time``); ``cancel_status``: an HTTP error the
    cancel call answers instead of the canceled prediction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls: int | None = 0
        self.starting_polls: int | None = 0
        self.predict_time = 2.5
        self.cancel_status: int | None = None
        self.output_url: str | None = None  # hand back this URL instead of our own file (SSRF tests)
        self.predictions: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []
        #: file id -> (bytes, content type, file object) uploaded through POST /v1/files
        self.uploads: dict[str, tuple[bytes, str, dict[str, Any]]] = {}

    def problem(self, code: int, title: str, detail: str, **extra: Any) -> Reply:
        return Reply.json(code, {"title": title, "detail": detail, "status": code, **extra}, content_type="application/problem+json")

    def error(self, code: int) -> Reply:
        titles = {
            400: ("Bad request", "Invalid JSON"),
            401: ("Unauthenticated", "You did not pass a valid authentication token"),
            402: (
                "Insufficient credit",
                "You have insufficient credit to run this model. Go to https://replicate.com/account/billing#billing to purchase credit.",
            ),
            403: ("Forbidden", "You do not have permission to run this model"),
            422: ("Input validation failed", "- input.width: width must be one of the following: 64, 128"),
            429: ("Request was throttled", f"Request was throttled. Expected available in {RETRY_AFTER_S} seconds."),
            500: ("Internal server error", "Internal server error"),
            503: ("Service unavailable", "Try again later"),
        }
        title, detail = titles[code]
        extra: dict[str, Any] = {"retry_after": RETRY_AFTER_S} if code == 429 else {}
        if code == 422:
            extra["invalid_fields"] = [{"type": "enum", "field": "input.width", "description": "width must be one of the following: 64, 128"}]
        return self.problem(code, title, detail, **extra)

    def _view(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """The prediction as the API answers it: a ``starting`` one without ``output``,
        ``started_at``, ``completed_at`` and ``metrics`` (as in the official client's
        recorded create answers), a ``processing`` one without ``completed_at`` and
        ``metrics``; a terminated one with all of them."""
        hidden = {"starting": ("output", "started_at", "completed_at", "metrics"), "processing": ("completed_at", "metrics")}.get(prediction["status"], ())
        return {k: v for k, v in prediction.items() if not k.startswith("_") and k not in hidden}

    def input_file(self, value: str) -> bytes | None:
        """The bytes of a file input: a data URI, or one of our uploaded files' ``urls.get``."""
        if value.startswith("data:"):
            return base64.b64decode(value.split(",", 1)[1])
        found = self.uploads.get(value.rsplit("/", 1)[-1]) if value.startswith(f"{self.url}/v1/files/") else None
        return found[0] if found else None

    def _output_size(self, model: str, data: dict[str, Any]) -> tuple[int, int]:
        reference = self.input_file(str(data["image"])) if model == "black-forest-labs/flux-dev" and "image" in data else None
        if reference is not None:  # cog-flux: the output takes the reference's aspect ratio (about 1 MP, sides by 16)
            with Image.open(io.BytesIO(reference)) as image:
                w, h = image.size
            scale = (1_048_576 / (w * h)) ** 0.5
            return max(16, round(w * scale / 16) * 16), max(16, round(h * scale / 16) * 16)
        if "aspect_ratio" in MODELS.get(model, (False, "", {}))[2]["components"]["schemas"]["Input"]["properties"]:
            return ratio_size(str(data.get("aspect_ratio", "1:1")), float(data.get("megapixels", "1")))
        return int(data.get("width") or 768), int(data.get("height") or 768)

    def _metrics(self) -> dict[str, float]:
        """``predict_time`` (seconds running) and ``total_time`` (with the 0.5 s queued)."""
        return {"predict_time": self.predict_time, "total_time": round(self.predict_time + 0.5, 6)}

    def _start(self, prediction: dict[str, Any]) -> None:
        prediction.update(status="processing", started_at=_at(0.5))

    def _finish(self, prediction: dict[str, Any]) -> None:
        mode = prediction["_mode"]
        width, height = self._output_size(prediction["model"], prediction["input"])
        if prediction["started_at"] is None and mode != "never_started":
            self._start(prediction)
        if mode in FAILURES:
            metrics: dict[str, float] = {} if mode in ("failed_no_metrics", "never_started") else self._metrics()
            prediction.update(
                status="failed",
                error=FAILURES[mode],
                metrics=metrics,
                logs=MODEL_TRACEBACK if mode == "model_error" else "",
                completed_at=_at(0.5 + (0.0 if mode == "never_started" else self.predict_time)),
            )
        else:
            fmt = {"jpg": "JPEG", "webp": "WEBP"}.get(str(prediction["input"].get("output_format")), "PNG")
            suffix, ctype = {"JPEG": (".jpg", "image/jpeg"), "WEBP": (".webp", "image/webp")}.get(fmt, (".png", "image/png"))
            url = self.output_url or self.add_file(image_for(mode, width, height, fmt), suffix, ctype)
            prediction.update(
                status="succeeded",
                output=[url],
                metrics=self._metrics(),
                logs=f"Using seed: {prediction['input'].get('seed', 4321)}\n",
                completed_at=_at(0.5 + self.predict_time),
            )

    def _model_object(self, name: str) -> dict[str, Any]:
        official, version, schema = MODELS[name]
        owner, model = name.split("/")
        return {
            "url": f"https://replicate.com/{name}",
            "owner": owner,
            "name": model,
            "visibility": "public",
            "is_official": official,
            "run_count": 1000,
            "latest_version": {"id": version, "created_at": "2026-01-01T00:00:00Z", "cog_version": "0.9.4", "openapi_schema": schema},
        }

    def route(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self.error(401)
        path = request.path
        if path == "/v1/files" and request.method == "POST":
            return self.create_file(request)
        if path == "/v1/account" and request.method == "GET":
            return Reply.json(200, {"type": "organization", "username": "studio", "name": "Studio"})
        if request.method == "GET" and path.startswith("/v1/models/") and "/predictions" not in path:
            return self._get_model(path)
        if request.method == "POST" and (path == "/v1/predictions" or (path.startswith("/v1/models/") and path.endswith("/predictions"))):
            return self._create_prediction(request, path)
        if path.startswith("/v1/predictions/"):
            return self._prediction(request, path)
        return self._not_found()

    def _not_found(self) -> Reply:
        return self.problem(404, "Not found", "The requested resource could not be found.")

    def _get_model(self, path: str) -> Reply:
        """``GET /v1/models/{owner}/{name}`` and ``.../versions/{id}``."""
        parts = path.removeprefix("/v1/models/").split("/")
        name = "/".join(parts[:2])
        if name not in MODELS:
            return self._not_found()
        if len(parts) == 4 and parts[2] == "versions":
            if parts[3] != MODELS[name][1]:
                return self._not_found()
            return Reply.json(200, {"id": parts[3], "created_at": "2026-01-01T00:00:00Z", "cog_version": "0.9.4", "openapi_schema": MODELS[name][2]})
        return Reply.json(200, self._model_object(name))

    def _model_of(self, path: str, data: dict[str, Any]) -> str | Reply:
        """The model a create call names: by version (``/v1/predictions``) or by name (official models only)."""
        if path == "/v1/predictions":
            found = [n for n, (_, v, _) in MODELS.items() if v == data.get("version")]
            if not found:
                return self.problem(
                    422, "Invalid version or not permitted", "The specified version does not exist (or perhaps you don't have permission to use it?)"
                )
            return found[0]
        model = path.removeprefix("/v1/models/").removesuffix("/predictions")
        if model not in MODELS or not MODELS[model][0]:  # only official models run by name
            return self._not_found()
        return model

    def _create_prediction(self, request: Request, path: str) -> Reply:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self.problem(415, "Unsupported media type", "Content-Type must be application/json")
        data = request.json()
        model = self._model_of(path, data)
        if isinstance(model, Reply):
            return model
        problems = invalid_fields(MODELS[model][2], data.get("input") or {}) + self.bad_files(data.get("input") or {})
        if problems:
            detail = "".join(f"- {p['field']}: {p['description']}\n" for p in problems)
            return self.problem(422, "Input validation failed", detail, invalid_fields=problems)
        mode, answer = self.admit()
        if answer is not None:
            return answer
        pid = uuid.uuid4().hex[:20]
        prediction = {
            "id": pid,
            "model": model,
            "version": MODELS[model][1],
            "input": data["input"],
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": "starting",
            "created_at": _at(0.0),
            "started_at": None,
            "completed_at": None,
            "metrics": {},
            "urls": {"get": f"{self.url}/v1/predictions/{pid}", "cancel": f"{self.url}/v1/predictions/{pid}/cancel"},
            "_mode": mode,
            "_polls": self.polls,
            "_starting": self.starting_polls,
        }
        self.predictions[pid] = prediction
        if mode == "never_started" or (self.starting_polls == 0 and self.polls == 0):
            self._finish(prediction)
        elif self.starting_polls == 0:
            self._start(prediction)
        return Reply.json(201, self._view(prediction))

    def _prediction(self, request: Request, path: str) -> Reply:
        """``GET /v1/predictions/{id}`` (one poll advances it) and ``POST .../cancel``."""
        pid = path.split("/")[3]
        prediction = self.predictions.get(pid)
        if prediction is None:
            return self._not_found()
        if path.endswith("/cancel") and request.method == "POST":
            return self._cancel(pid, prediction)
        if prediction["status"] == "starting" and prediction["_starting"] is not None:
            prediction["_starting"] -= 1
            if prediction["_starting"] <= 0:
                self._start(prediction)
        elif prediction["status"] == "processing" and prediction["_polls"] is not None:
            prediction["_polls"] -= 1
            if prediction["_polls"] <= 0:
                self._finish(prediction)
        return Reply.json(200, self._view(prediction))

    def _cancel(self, pid: str, prediction: dict[str, Any]) -> Reply:
        self.cancelled.append(pid)
        if self.cancel_status is not None:
            return self.error(self.cancel_status)
        if prediction["status"] in ("starting", "processing"):  # a finished one stays as it is
            ran = prediction["started_at"] is not None
            prediction.update(status="canceled", completed_at=_at(0.5 + (self.predict_time if ran else 0.0)), metrics=self._metrics() if ran else {})
        return Reply.json(200, self._view(prediction))

    def create_file(self, request: Request) -> Reply:
        """POST /v1/files (https://replicate.com/docs/reference/http#files.create): multipart
        ``content`` (the file), optional ``filename`` / ``type`` / ``metadata``; 201 with the
        file object (``id``, ``name``, ``content_type``, ``size``, ``etag``, ``checksums``,
        ``metadata``, ``created_at``, ``expires_at``, ``urls.get``)."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return self.problem(415, "Unsupported media type", "Content-Type must be multipart/form-data")
        form = request.form()
        content = form.get("content")
        if not isinstance(content, bytes) or not content:
            return self.problem(400, "Bad request", "content is required")
        fid = uuid.uuid4().hex[:24]
        kind = str(form.get("type") or "application/octet-stream")
        obj = {
            "id": fid,
            "name": "reference",
            "content_type": kind,
            "size": len(content),
            "etag": fid,
            "checksums": {},
            "metadata": {},
            "created_at": _at(0.0),
            "expires_at": _at(86400.0),
            "urls": {"get": f"{self.url}/v1/files/{fid}"},
        }
        self.uploads[fid] = (content, kind, obj)
        return Reply.json(201, obj)

    def bad_files(self, data: dict[str, Any]) -> list[dict[str, str]]:
        """File inputs the service refuses: a data URI over ``DATA_URI_LIMIT`` bytes, a URL
        that names no file."""
        problems = []
        for name in ("image", "mask"):
            value = data.get(name)
            if not isinstance(value, str):
                continue
            if value.startswith("data:") and len(base64.b64decode(value.split(",", 1)[1])) > DATA_URI_LIMIT:
                problems.append({"type": "size", "field": f"input.{name}", "description": "data URI over 1 MB: upload it"})
            elif self.input_file(value) is None:
                problems.append({"type": "uri", "field": f"input.{name}", "description": "file not found"})
        return problems


def _sent(r: Request) -> None:
    assert r.path == "/v1/predictions" and r.json()["version"] == SD_VERSION  # not an official model: by version
    assert r.headers["authorization"] == f"Bearer {TOKEN}" and r.headers["prefer"].startswith("wait=")
    data = r.json()["input"]
    assert data["prompt"] == PROMPT and data["seed"] == 123 and (data["width"], data["height"]) == (512, 384)
    assert data["negative_prompt"] == NEGATIVE and data["num_inference_steps"] == 30 and data["guidance_scale"] == 7.5


def is_prediction(r: Request) -> bool:
    """A paid call: a prediction created (by version or by official model name)."""
    return r.method == "POST" and (r.path == "/v1/predictions" or (r.path.startswith("/v1/models/") and r.path.endswith("/predictions")))


CASE = ContractCase(
    provider="replicate",
    server=ReplicateServer,
    settings=lambda url: {"base_url": url, "poll_interval_s": 0.05},
    secrets={"REPLICATE_API_TOKEN": TOKEN},
    cost_usd=round(2.5 * 0.0014, 6),
    sent=_sent,
    is_generation=is_prediction,
    overrides={"402": "auth_billing"},
)
