"""Local ``diffusers`` pipelines: SD 1.5, SDXL and FLUX, on CUDA (fp16 / bf16, SDPA) or
the CPU (float32). The only module that imports torch / diffusers, and only when a
pipeline is first needed (install: ``pip install torch==2.13.0`` then the ``local``
extra). https://huggingface.co/docs/diffusers

Models are configured by name (``providers.diffusers.models``): ``path`` (hub id, local
``save_pretrained`` folder, or a single ``.safetensors`` / ``.ckpt`` file), ``pipeline``
(``auto`` reads model_index.json; ``sd15`` / ``sdxl`` / ``flux``), ``vae``, a default
``negative_prompt``, a ``description``, ``scheduler`` (a diffusers scheduler class name),
``max_sequence_length`` (FLUX's T5 tokens: 256 for schnell) and LoRAs with ``path``,
default ``weight`` and ``trigger_words`` (added to the prompt while the LoRA is active).
``HUGGINGFACE_TOKEN`` unlocks gated hub models.

A pipeline is loaded once per device and stays loaded across images (until ``close()``).
On CUDA: fp16 (bf16 for FLUX), SDPA attention, channels-last UNet and VAE, VAE slicing
for batches and tiling above one megapixel, and with ``compile`` a ``torch.compile`` of
the UNet / transformer whose warm-up is timed apart
(https://huggingface.co/docs/diffusers/optimization/fp16). ``generate_batch`` renders the
variations of one template in one pipeline call (one ``torch.Generator`` per seed, so
each image is reproducible from its own seed), at most ``batch_limit`` images per call
(``max_batch_size``, and the free GPU memory). A CUDA out-of-memory is retried once at
half the batch size, then falls back to the CPU if ``cpu_fallback`` allows it; every
result says which device made it (``metadata["device"]``). A pipeline's safety
checker, where the model has one, flags images: ContentFilteredError. Local: cost 0
unless ``cost_usd`` / ``prices_usd`` are configured.

Brand consistency: a template's ControlNet units run through the ControlNet pipeline of
the same components (``controlnets`` of the model by name), its IP-Adapter style reference
through ``load_ip_adapter`` (``ip_adapters`` by name), and its hires-fix pass as an img2img
pass at the larger size (``AutoPipelineForImage2Image.from_pipe``).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import secrets as random_source
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from domain.model import GenerationRequest, GenerationResult
from domain.errors import (
    AuthBillingProviderError,
    ConfigError,
    ContentFilteredError,
    ProviderError,
    RejectedProviderError,
    TransientProviderError,
)
from domain.log import get_logger
from providers.base import Provider, ProviderCheck, result_from_bytes
from providers.spec import ModelSpec, ProviderConfig
import inspect

INSTALL_HINT = "pip install torch==2.13.0 && pip install 'content-pipeline[local]'"
PIPELINE_CLASSES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "flux": "FluxPipeline", "auto": "AutoPipelineForText2Image"}
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")
#: Above this many pixels per image the VAE decodes in tiles on CUDA (1024 x 1024 is not tiled).
TILE_ABOVE_PIXELS = 1024 * 1024


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``torch.cuda.OutOfMemoryError`` (``torch.OutOfMemoryError``) and for the
    RuntimeErrors whose message says the device ran out of memory (CUDA kernels, cuDNN)."""
    import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

    return isinstance(exc, torch.OutOfMemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


@dataclass
class Rendered:
    """One pipeline call: the PIL images in request order and what made them.

    ``seconds`` is the call itself; ``warmup_s`` the torch.compile warm-up call made just
    before it (first call of a shape), None when there was none. ``device``: ``cuda``,
    ``mps`` or ``cpu``."""

    images: list[Any]
    seeds: list[int]
    prompts: list[str]
    flagged: list[bool]
    loras: dict[str, float]
    device: str
    seconds: float
    warmup_s: float | None
    model: str
    description: str
    #: What conditioned the images: ControlNet units, IP-Adapter, hires-fix size (metadata).
    conditioning: dict[str, Any] = field(default_factory=dict)


class LoraConfig(BaseModel):
    """A LoRA: a local file / folder or a hub id, its default weight and trigger words."""

    model_config = ConfigDict(extra="forbid")
    path: str
    weight: Annotated[float, Field(ge=-4, le=4)] = 1.0
    trigger_words: list[str] = Field(default_factory=list)
    weight_name: str | None = None


class IpAdapterConfig(BaseModel):
    """An IP-Adapter of a local model (https://huggingface.co/docs/diffusers/using-diffusers/ip_adapter):
    ``path`` a local folder or a hub id (``h94/IP-Adapter``), its ``subfolder`` (``models``
    for SD 1.5, ``sdxl_models``), the ``weight_name`` (``ip-adapter_sd15.safetensors``) and
    the CLIP vision ``image_encoder`` folder (inside ``subfolder``; with a ``/``, inside ``path``)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    subfolder: str = ""
    weight_name: str = "ip-adapter.safetensors"
    image_encoder: str = "image_encoder"


class LocalModelConfig(BaseModel):
    """A local diffusers model: ``path`` is a hub id or a local folder (``save_pretrained``
    layout) or a single-file checkpoint; ``pipeline`` picks SD 1.5 / SDXL / FLUX
    (``auto`` reads the folder's model_index.json)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    pipeline: Literal["auto", "sd15", "sdxl", "flux"] = "auto"
    vae: str | None = None
    negative_prompt: str | None = None
    description: str = ""
    loras: dict[str, LoraConfig] = Field(default_factory=dict)
    scheduler: str | None = None
    #: FLUX: T5 prompt tokens (256 for FLUX.1-schnell, 512 for dev); None: the pipeline's default.
    max_sequence_length: Annotated[int, Field(ge=1, le=512)] | None = None
    #: ControlNet models by the name a template's unit gives (``model``): a local folder or a hub id
    #: (``lllyasviel/control_v11p_sd15_canny``); SD 1.5 / SDXL ``ControlNetModel``, FLUX ``FluxControlNetModel``.
    controlnets: dict[str, str] = Field(default_factory=dict)
    #: IP-Adapters by the name a template's ``ip_adapter.model`` gives.
    ip_adapters: dict[str, IpAdapterConfig] = Field(default_factory=dict)


class DiffusersConfig(ProviderConfig):
    """Local ``diffusers`` pipelines (needs the ``local`` extra). ``models`` by name;
    ``model`` picks the default one. fp16 / bf16 with SDPA on CUDA, float32 on CPU.
    ``max_batch_size``: images per pipeline call (also bounded by the free GPU memory).
    ``compile``: a ``torch.compile`` mode for the UNet / transformer, ``off`` by default.
    ``cpu_fallback``: after a CUDA out-of-memory that a halved batch does not cure, make
    the images on the CPU (slow) instead of failing over to the next provider.
    ``HUGGINGFACE_TOKEN`` unlocks gated hub models. Local: cost 0 unless priced."""

    enabled: bool = False
    model: str | None = None
    models: dict[str, LocalModelConfig] = Field(default_factory=dict)
    models_dir: Path = Path("models")
    device: Literal["auto", "cuda", "cpu", "mps"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    max_batch_size: Annotated[int, Field(ge=1, le=64)] = 4
    local_files_only: bool = False
    compile: Literal["off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = "off"
    cpu_fallback: bool = False


class DiffusersProvider(Provider):
    """Text-to-image with locally loaded diffusers pipelines."""

    name: ClassVar[str] = "diffusers"
    display_name: ClassVar[str] = "Local diffusers (GPU or CPU)"
    Config = DiffusersConfig
    models: ClassVar[tuple[str, ...]] = ()  # configured by name in providers.diffusers.models
    default_model: ClassVar[str] = ""
    #: A Hugging Face token unlocks gated hub models (optional).
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"token": ("HUGGINGFACE_TOKEN", "HF_TOKEN")}
    optional_secret_env: ClassVar[frozenset[str]] = frozenset({"token"})  # gated models only
    #: diffusers pipelines take any size divisible by 8 (the VAE's factor).
    default_spec: ClassVar[ModelSpec] = ModelSpec(
        side_range=(64, 2048), side_multiple=8, steps=(1, 150), guidance=(0.0, 30.0), loras=True, controlnet=True, ip_adapter=True
    )

    config: DiffusersConfig

    def __init__(self, *, config: DiffusersConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        missing = [m for m in ("torch", "diffusers", "transformers") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"providers.diffusers: {', '.join(missing)} not installed ({INSTALL_HINT})")
        if config.model and config.model not in config.models:
            raise ConfigError(
                f"providers.diffusers.model: {config.model!r} is not one of providers.diffusers.models ({', '.join(config.models) or 'none configured'})"
            )
        self._pipelines: dict[tuple[str, str], Any] = {}
        #: ControlNet models loaded by (model, ControlNet name, device); the IP-Adapter loaded into each pipeline.
        self._controlnets: dict[tuple[str, str, str], Any] = {}
        self._ip_loaded: dict[tuple[str, str], str | None] = {}
        self._load_errors: dict[tuple[str, str], ProviderError] = {}
        self._lock = threading.RLock()
        #: Batch size a model ran out of memory above (halved at each out-of-memory).
        self._batch_limits: dict[str, int] = {}
        #: Peak GPU bytes per output pixel a model's calls needed above the loaded weights.
        self._bytes_per_pixel: dict[str, float] = {}
        #: How many times a pipeline was loaded / called (a pipeline stays loaded across images).
        self.loads = 0
        self.calls = 0
        #: Seconds of each torch.compile warm-up call by (model, device, width, height, batch size).
        self.warmups: dict[tuple[str, str, int, int, int], float] = {}
        #: torch.compile backend: ``inductor``; the CPU smoke run of the benchmark uses ``eager``.
        self.compile_backend = "inductor"

    @property
    def model(self) -> str:
        return self.config.model or next(iter(self.config.models), "")

    def spec(self, model: str) -> LocalModelConfig:
        """The configuration of model ``model`` (RejectedProviderError when unknown)."""
        try:
            return self.config.models[model]
        except KeyError:
            raise RejectedProviderError(
                f"unknown local model {model!r} (configured: {', '.join(self.config.models)})", provider=self.name, model=model
            ) from None

    # -- device and loading -------------------------------------------------------------

    def device_and_dtype(self, family: str = "sd15", device: str | None = None) -> tuple[str, Any]:
        """(device, torch dtype) for a pipeline of ``family``: the configured device (``auto``:
        CUDA, else MPS, else CPU) unless ``device`` is given; CUDA fp16 (bf16 for FLUX where
        the GPU supports it), MPS fp16, CPU float32, unless ``dtype`` is configured. The CPU
        fallback after an out-of-memory (``device="cpu"``) is always float32."""
        import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

        if device is None:
            device = self.config.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
            if self.config.dtype != "auto":
                return device, getattr(torch, self.config.dtype)
        elif device == "cpu":
            return device, torch.float32
        if device == "cuda":
            bf16 = family == "flux" and torch.cuda.is_bf16_supported()
            return device, torch.bfloat16 if bf16 else torch.float16
        return device, torch.float16 if device == "mps" else torch.float32

    def _resolve_path(self, path: str) -> str:
        """A relative local path is looked up under ``models_dir`` (where ``models pull`` puts files)."""
        candidate = Path(path).expanduser()
        if not candidate.is_absolute() and not candidate.exists() and (self.config.models_dir / candidate).exists():
            return str(self.config.models_dir / candidate)
        return str(candidate) if candidate.exists() else path

    def pipeline(self, model: str, device: str | None = None) -> Any:
        """The loaded pipeline of ``model`` on ``device`` (None: the configured device),
        loaded on first use and then kept until ``close()``."""
        target = device or self.device_and_dtype(self.spec(model).pipeline)[0]
        key = (model, target)
        with self._lock:
            if key in self._pipelines:
                return self._pipelines[key]
            if key in self._load_errors:
                raise self._load_errors[key]
            try:
                pipe = self._load(model, self.spec(model), target)
            except ProviderError as exc:
                self._load_errors[key] = exc
                raise
            self._pipelines[key] = pipe
            self.loads += 1
            return pipe

    def adopt(self, model: str, pipe: Any, device: str | None = None) -> Any:
        """Use ``pipe``, a pipeline already built (benchmarks/gpu_generation.py builds full-size
        architectures with random weights), as the loaded pipeline of ``model`` on ``device``.
        It gets the same preparation as a loaded one (device, SDPA, channels-last, compile);
        returns the prepared pipeline."""
        spec = self.spec(model)
        target, _ = self.device_and_dtype(spec.pipeline, device)
        prepared = self._prepare(pipe, target, compile_denoiser=True)
        with self._lock:
            self._pipelines[(model, target)] = prepared
        return prepared

    def _load_vae(self, vae: str, dtype: dict[str, Any], hub: dict[str, Any]) -> Any:
        """The VAE at ``vae`` (a single file, a folder or a Hub id) in the given dtype."""
        import diffusers  # noqa: PLC0415 - diffusers: optional, heavy (the local GPU extra)

        vae_path = self._resolve_path(vae)
        if vae_path.endswith(SINGLE_FILE_SUFFIXES):
            return diffusers.AutoencoderKL.from_single_file(vae_path, **dtype)
        return diffusers.AutoencoderKL.from_pretrained(vae_path, **dtype, **hub)

    def _scheduler(self, name: str, pipe: Any, model: str) -> Any:
        """The diffusers scheduler class ``name`` built from ``pipe``'s scheduler config
        (https://huggingface.co/docs/diffusers/api/schedulers/overview)."""
        import diffusers  # noqa: PLC0415 - diffusers: optional, heavy (the local GPU extra)

        scheduler_cls = getattr(diffusers, name, None)
        if scheduler_cls is None:
            raise RejectedProviderError(f"unknown scheduler {name!r} for model {model!r}", provider=self.name, model=model)
        return scheduler_cls.from_config(pipe.scheduler.config)

    def _load(self, model: str, spec: LocalModelConfig, device: str) -> Any:
        import diffusers  # noqa: PLC0415 - diffusers: optional, heavy (the local GPU extra)

        family = spec.pipeline
        device, dtype = self.device_and_dtype(family, None if device == self._primary_device(family) else device)
        path = self._resolve_path(spec.path)
        dtype_key = _dtype_key()
        common: dict[str, Any] = {dtype_key: dtype}
        hub = self._hub(path)
        try:
            if spec.vae:
                common["vae"] = self._load_vae(spec.vae, {dtype_key: dtype}, hub)
            if path.endswith(SINGLE_FILE_SUFFIXES):
                cls = getattr(diffusers, PIPELINE_CLASSES["sd15" if family == "auto" else family])
                pipe = cls.from_single_file(path, **common)
            else:
                cls = getattr(diffusers, PIPELINE_CLASSES[family])
                pipe = cls.from_pretrained(path, **common, **hub)
            if spec.scheduler:
                pipe.scheduler = self._scheduler(spec.scheduler, pipe, model)
            for lora_name, lora in spec.loras.items():
                kwargs = {"weight_name": lora.weight_name} if lora.weight_name else {}
                pipe.load_lora_weights(self._resolve_path(lora.path), adapter_name=lora_name, **kwargs, **hub)
            pipe = self._prepare(pipe, device, compile_denoiser=device == self._primary_device(family))
        except ProviderError:
            raise
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            if any(marker in text for marker in ("401", "403", "gated", "GatedRepo", "Unauthorized")):
                raise AuthBillingProviderError(
                    f"cannot load {model!r} ({spec.path}): {text[:300]} (set HUGGINGFACE_TOKEN)", provider=self.name, model=model
                ) from exc
            raise RejectedProviderError(f"cannot load {model!r} ({spec.path}): {text[:300]}", provider=self.name, model=model) from exc
        return pipe

    def _hub(self, path: str) -> dict[str, Any]:
        """The hub keyword arguments of a ``from_pretrained``: ``local_files_only`` (configured,
        or ``path`` exists here) and the token for gated models."""
        hub: dict[str, Any] = {"local_files_only": self.config.local_files_only or Path(path).exists()}
        token = self.secret("token")
        if token:
            hub["token"] = token
        return hub

    def _prepare(self, pipe: Any, device: str, *, compile_denoiser: bool) -> Any:
        """Move ``pipe`` to ``device``; on CUDA: SDPA attention and channels-last memory for
        the UNet and the VAE (https://huggingface.co/docs/diffusers/optimization/fp16);
        ``compile`` configured and ``compile_denoiser`` (not for the CPU fallback):
        ``torch.compile`` of the UNet / transformer
        (https://huggingface.co/docs/diffusers/optimization/torch2.0)."""
        import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

        pipe = pipe.to(device)
        unet = getattr(pipe, "unet", None)
        if device == "cuda":
            from diffusers.models.attention_processor import AttnProcessor2_0  # noqa: PLC0415 - diffusers: optional, heavy (the local GPU extra)

            if unet is not None and hasattr(unet, "set_attn_processor"):
                unet.set_attn_processor(AttnProcessor2_0())  # torch SDPA (FLUX's processors use it already)
            for part in (unet, getattr(pipe, "vae", None)):
                if part is not None:
                    part.to(memory_format=torch.channels_last)
        if self.config.compile != "off" and compile_denoiser:
            for attribute in ("unet", "transformer"):
                denoiser = getattr(pipe, attribute, None)
                if denoiser is not None and not hasattr(denoiser, "_orig_mod"):
                    # static shapes: one graph per (size, batch), what CUDA graphs and autotuning want;
                    # a mode is an inductor option (other backends ignore it with a warning)
                    mode = self.config.compile if self.compile_backend == "inductor" else None
                    setattr(pipe, attribute, torch.compile(denoiser, backend=self.compile_backend, dynamic=False, mode=mode))
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _primary_device(self, family: str = "sd15") -> str:
        return self.device_and_dtype(family)[0]

    # -- generation ---------------------------------------------------------------------

    def _adapters(self, pipe: Any, spec: LocalModelConfig, request: GenerationRequest) -> list[tuple[str, float]]:
        """Activate the request's LoRAs (or the model's defaults); returns (name, weight) applied."""
        if not spec.loras:
            return []
        wanted = dict(request.loras) if request.loras is not None else {n: lora.weight for n, lora in spec.loras.items()}
        unknown = [n for n in wanted if n not in spec.loras]
        if unknown:
            raise RejectedProviderError(
                f"unknown LoRA {unknown[0]!r} (model has: {', '.join(spec.loras)})", provider=self.name, model=request.model or self.model
            )
        names = list(spec.loras)
        weights = [float(wanted.get(n, 0.0)) for n in names]
        pipe.set_adapters(names, adapter_weights=weights)
        return [(n, w) for n, w in zip(names, weights, strict=True) if w != 0.0]

    def prompt_for(self, spec: LocalModelConfig, request: GenerationRequest, active: Sequence[tuple[str, float]]) -> str:
        """The prompt with the trigger words of every active LoRA appended (once)."""
        words = [w for name, _ in active for w in spec.loras[name].trigger_words if w not in request.prompt]
        return ", ".join([request.prompt, *words]) if words else request.prompt

    @staticmethod
    def batch_key(request: GenerationRequest) -> tuple[Any, ...]:
        """Requests with equal keys can share one pipeline call (they differ in prompt / seed only)."""
        return (
            request.model,
            request.width,
            request.height,
            request.num_inference_steps,
            request.guidance_scale,
            request.loras,
            request.init_image is None,
            request.control_units,
            request.style_reference,
            request.hires_fix,
        )

    def batch_limit(self, request: GenerationRequest) -> int:
        """How many images like ``request`` one pipeline call renders: ``max_batch_size``,
        lowered after an out-of-memory, and on CUDA to what the free GPU memory holds at the
        bytes per pixel measured on this model's earlier calls (torch.cuda.mem_get_info plus
        the allocator's cached free blocks, 90 % of it)."""
        import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

        model = request.model or self.model
        limit = min(self.config.max_batch_size, self._batch_limits.get(model, self.config.max_batch_size))
        per_pixel = self._bytes_per_pixel.get(model)
        if per_pixel and self._primary_device(self.spec(model).pipeline) == "cuda" and torch.cuda.is_available():
            free, _total = torch.cuda.mem_get_info()
            free += torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
            fits = int(0.9 * free // (per_pixel * request.width * request.height))
            limit = max(1, min(limit, fits))
        return limit

    def generate(self, request: GenerationRequest) -> GenerationResult:
        outcome = self.generate_batch([request])[0]
        if isinstance(outcome, ProviderError):
            raise outcome
        return outcome

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult | ProviderError]:
        """One result (or the ProviderError of that image) per request, in order.

        Requests sharing ``batch_key`` (the variations of one template) are rendered
        together, ``batch_limit`` at a time, in one pipeline call each. A CUDA
        out-of-memory is retried once at half the batch size (which then stays the limit
        for the run); if that runs out of memory too, the rest of the batch is made on the
        CPU when ``cpu_fallback`` is on, else each of its images fails with a
        TransientProviderError. Any other failure of a whole call (a bad size) is that
        error for each of its images. ``metadata["device"]`` says which device made an image.
        """
        outcomes: list[GenerationResult | ProviderError | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(self.batch_key(request), []).append(index)
        for indices in groups.values():
            position = 0
            while position < len(indices):
                chunk = indices[position : position + self.batch_limit(requests[indices[position]])]
                for i, result in zip(chunk, self._render_chunk([requests[i] for i in chunk]), strict=True):
                    outcomes[i] = result
                position += len(chunk)
        return [o for o in outcomes if o is not None]

    def _render_chunk(self, batch: list[GenerationRequest]) -> list[GenerationResult | ProviderError]:
        """``batch`` rendered in one call, or after an out-of-memory as described in ``generate_batch``."""
        log = get_logger()
        model = batch[0].model or self.model
        try:
            return self._results(batch, self.render(batch))
        except ProviderError as exc:
            return [exc] * len(batch)
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            first_error = exc
        self._release_cuda_memory()
        smaller = max(1, len(batch) // 2)
        self._batch_limits[model] = min(self._batch_limits.get(model, self.config.max_batch_size), smaller)
        results: list[GenerationResult | ProviderError] = []
        remaining = batch
        if len(batch) > 1:
            log.warning("diffusers %s: out of memory at batch size %s, retrying at %s", model, len(batch), smaller)
            for start in range(0, len(batch), smaller):
                part = batch[start : start + smaller]
                try:
                    results.extend(self._results(part, self.render(part)))
                except ProviderError as exc:
                    results.extend([exc] * len(part))
                except RuntimeError as exc:
                    if not is_out_of_memory(exc):
                        raise
                    first_error, remaining = exc, batch[start:]
                    self._batch_limits[model] = max(1, smaller // 2)
                    self._release_cuda_memory()
                    break
            else:
                return results
        family = self.spec(model).pipeline
        if self.config.cpu_fallback and self._primary_device(family) != "cpu":
            log.warning("diffusers %s: out of memory again, making %s image(s) on the CPU (cpu_fallback)", model, len(remaining))
            return results + self._render_on_cpu(remaining, model)
        why = "cpu_fallback is off" if self._primary_device(family) != "cpu" else "on the CPU"
        error = TransientProviderError(f"out of memory at batch size {len(remaining)} ({why}): {str(first_error)[:200]}", provider=self.name, model=model)
        results.extend([error] * len(remaining))
        return results

    def _render_on_cpu(self, batch: list[GenerationRequest], model: str) -> list[GenerationResult | ProviderError]:
        """``batch`` rendered on the CPU (``cpu_fallback``); a CPU out of memory too is a
        TransientProviderError for each request."""
        try:
            return self._results(batch, self.render(batch, device="cpu"))
        except ProviderError as exc:
            return [exc] * len(batch)
        except RuntimeError as exc:  # the CPU ran out of memory too
            error = TransientProviderError(f"out of memory on the GPU and the CPU: {str(exc)[:200]}", provider=self.name, model=model)
            return [error] * len(batch)

    def _release_cuda_memory(self) -> None:
        import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def render(self, batch: Sequence[GenerationRequest], device: str | None = None) -> Rendered:
        """Run one pipeline call for ``batch`` (requests sharing ``batch_key``) on ``device``
        (None: the configured one) and return the PIL images, unvalidated.

        With ``compile`` on, the first call of each (model, device, size, batch size) is
        preceded by a warm-up call at up to 2 steps that triggers the compilation; its
        seconds are recorded apart (``Rendered.warmup_s``, ``self.warmups``). Raises
        RejectedProviderError (img2img, unknown LoRA, a size the pipeline refuses),
        TransientProviderError (another runtime error) and lets an out-of-memory
        RuntimeError (``is_out_of_memory``) through to the caller.
        """
        import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

        first = batch[0]
        model = first.model or self.model
        if first.init_image is not None:
            raise RejectedProviderError(
                "img2img is not offered by the local diffusers provider (use automatic1111 or flux_studio)", provider=self.name, model=model
            )
        spec = self.spec(model)
        target = device or self._primary_device(spec.pipeline)
        pipe = self.pipeline(model, target)
        seeds = [r.seed if r.seed is not None else random_source.randbelow(2**32) for r in batch]
        with self._lock:
            active = self._adapters(pipe, spec, first)
            prompts = [self.prompt_for(spec, r, active) for r in batch]
            negatives = [r.negative_prompt or spec.negative_prompt or "" for r in batch]
            self._tune_vae(pipe, target, first, len(batch))
            pipe_device = getattr(pipe, "device", torch.device("cpu"))
            generator_device = "cpu" if str(pipe_device).startswith("mps") else str(pipe_device)

            mapped = self.map(first)  # sides multiples of 8 (the VAE's factor), steps 1..150
            steps = mapped.num_inference_steps or first.num_inference_steps
            call_pipe, extra = self._conditioned(pipe, spec, first, (model, target), mapped)
            parameters = _call_parameters(call_pipe)

            call_kwargs = functools.partial(
                _call_kwargs,
                prompts=prompts,
                negatives=negatives,
                mapped=mapped,
                seeds=seeds,
                generator_device=generator_device,
                parameters=parameters,
                max_sequence_length=spec.max_sequence_length,
                extra=extra,
            )

            warmup_s = None
            shape = (model, target, mapped.width, mapped.height, len(batch))
            try:
                if self.config.compile != "off" and shape not in self.warmups:
                    started = time.monotonic()
                    self._invoke(call_pipe, call_kwargs(min(2, steps)), target)
                    warmup_s = self.warmups[shape] = time.monotonic() - started
                measure = target == "cuda" and torch.cuda.is_available()
                if measure:
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                started = time.monotonic()
                output = self._invoke(call_pipe, call_kwargs(steps), target)
                images = list(output.images)
                if first.hires_fix is not None:
                    images = self._hires(pipe, first, images, call_kwargs(steps))
                seconds = time.monotonic() - started
                if measure:
                    per_pixel = (torch.cuda.max_memory_allocated() - base) / (len(batch) * mapped.width * mapped.height)
                    self._bytes_per_pixel[model] = max(self._bytes_per_pixel.get(model, 0.0), per_pixel)
            except RuntimeError as exc:
                if is_out_of_memory(exc):
                    raise
                raise TransientProviderError(f"{type(exc).__name__}: {str(exc)[:300]}", provider=self.name, model=model) from exc
            except (ValueError, TypeError) as exc:  # check_inputs: sizes, prompt lengths
                raise RejectedProviderError(f"{type(exc).__name__}: {str(exc)[:300]}", provider=self.name, model=model) from exc
            self.calls += 1
        flags = getattr(output, "nsfw_content_detected", None) or [False] * len(batch)
        return Rendered(
            images=images,
            seeds=seeds,
            prompts=prompts,
            flagged=[bool(f) for f in flags],
            loras=dict(active),
            device=target,
            seconds=seconds,
            warmup_s=warmup_s,
            model=model,
            description=spec.description,
            conditioning=_conditioning(first),
        )

    def cannot(self, request: GenerationRequest) -> str | None:
        """The base class's reasons, and a ControlNet unit or an IP-Adapter the model does not
        configure (``providers.diffusers.models.<model>.controlnets`` / ``ip_adapters``)."""
        reason = super().cannot(request)
        model = self.model_of(request)
        spec = self.config.models.get(model)
        if reason or spec is None:  # an unknown model is rejected when rendered
            return reason
        missing = [c.unit.model for c in request.control_units or () if c.unit.model not in spec.controlnets]
        if missing:
            known = ", ".join(spec.controlnets) or "none"
            return f"{self.name} {model} has no ControlNet {missing[0]!r} (providers.diffusers.models.{model}.controlnets: {known})"
        style = request.style_reference
        if style is not None and style.unit.model not in spec.ip_adapters:
            known = ", ".join(spec.ip_adapters) or "none"
            return f"{self.name} {model} has no IP-Adapter {style.unit.model!r} (providers.diffusers.models.{model}.ip_adapters: {known})"
        return None

    def _conditioned(self, pipe: Any, spec: LocalModelConfig, request: GenerationRequest, key: tuple[str, str], mapped: Any) -> tuple[Any, dict[str, Any]]:
        """The pipeline to call for ``request`` and the keyword arguments its conditioning adds.

        An IP-Adapter style reference is loaded into ``pipe`` (``load_ip_adapter``; another one
        unloaded first) with its weight as the scale, and its image goes as ``ip_adapter_image``.
        ControlNet units make the ControlNet pipeline of the same components
        (``AutoPipelineForText2Image.from_pipe(pipe, controlnet=...)``: StableDiffusion /
        StableDiffusionXL / Flux ControlNet pipelines; several units: a multi-ControlNet) with the
        control images resized to the output size, ``controlnet_conditioning_scale`` = the weights
        and ``control_guidance_start`` / ``control_guidance_end``
        (https://huggingface.co/docs/diffusers/using-diffusers/controlnet)."""
        import diffusers  # noqa: PLC0415 - diffusers: optional, heavy (the local GPU extra)

        model = key[0]
        self._load_style(pipe, spec, request, key)
        extra: dict[str, Any] = {}
        if request.style_reference is not None:
            extra["ip_adapter_image"] = _picture(request.style_reference.image, provider=self.name, model=model)
        units = request.control_units or ()
        if not units:
            return pipe, extra
        nets = [self._controlnet(pipe, spec, unit.unit.model, key) for unit in units]
        try:
            control_pipe = diffusers.AutoPipelineForText2Image.from_pipe(pipe, controlnet=nets if len(nets) > 1 else nets[0])
        except (ValueError, TypeError, KeyError) as exc:
            raise RejectedProviderError(f"no ControlNet pipeline for {type(pipe).__name__}: {str(exc)[:200]}", provider=self.name, model=model) from exc
        control_pipe.set_progress_bar_config(disable=True)
        images = [_picture(u.image, provider=self.name, model=model).resize((mapped.width, mapped.height)) for u in units]
        one = len(units) == 1
        image_key = "control_image" if "control_image" in _call_parameters(control_pipe) else "image"
        extra[image_key] = images[0] if one else images
        for name, values in (
            ("controlnet_conditioning_scale", [u.unit.weight for u in units]),
            ("control_guidance_start", [u.unit.guidance_start for u in units]),
            ("control_guidance_end", [u.unit.guidance_end for u in units]),
        ):
            extra[name] = values[0] if one else values
        return control_pipe, extra

    def _controlnet(self, pipe: Any, spec: LocalModelConfig, name: str, key: tuple[str, str]) -> Any:
        """ControlNet ``name`` of the model (``spec.controlnets``), loaded once per device in the
        pipeline's dtype; RejectedProviderError when it is not configured or does not load."""
        import diffusers  # noqa: PLC0415 - diffusers: optional, heavy (the local GPU extra)

        model, device = key
        if (model, name, device) in self._controlnets:
            return self._controlnets[(model, name, device)]
        if name not in spec.controlnets:
            raise RejectedProviderError(f"no ControlNet {name!r} configured for {model!r}", provider=self.name, model=model)
        path = self._resolve_path(spec.controlnets[name])
        cls = diffusers.FluxControlNetModel if type(pipe).__name__.startswith("Flux") else diffusers.ControlNetModel
        try:
            net = cls.from_pretrained(path, **{_dtype_key(): pipe.dtype}, **self._hub(path)).to(device)
        except Exception as exc:
            raise RejectedProviderError(
                f"cannot load ControlNet {name!r} ({path}): {type(exc).__name__}: {str(exc)[:200]}", provider=self.name, model=model
            ) from exc
        self._controlnets[(model, name, device)] = net
        return net

    def _load_style(self, pipe: Any, spec: LocalModelConfig, request: GenerationRequest, key: tuple[str, str]) -> None:
        """Make ``pipe`` carry the request's IP-Adapter (or none): load / unload as needed
        (``load_ip_adapter`` / ``unload_ip_adapter``) and set its scale to the weight."""
        style = request.style_reference
        wanted = style.unit.model if style is not None else None
        loaded = self._ip_loaded.get(key)
        model = key[0]
        if wanted != loaded:
            if loaded is not None:
                pipe.unload_ip_adapter()
                self._ip_loaded[key] = None
            if wanted is not None:
                if wanted not in spec.ip_adapters:
                    raise RejectedProviderError(f"no IP-Adapter {wanted!r} configured for {model!r}", provider=self.name, model=model)
                adapter = spec.ip_adapters[wanted]
                path = self._resolve_path(adapter.path)
                try:
                    pipe.load_ip_adapter(
                        path, subfolder=adapter.subfolder, weight_name=adapter.weight_name, image_encoder_folder=adapter.image_encoder, **self._hub(path)
                    )
                except Exception as exc:
                    raise RejectedProviderError(
                        f"cannot load IP-Adapter {wanted!r} ({path}): {type(exc).__name__}: {str(exc)[:200]}", provider=self.name, model=model
                    ) from exc
                self._ip_loaded[key] = wanted
        if style is not None:
            pipe.set_ip_adapter_scale(style.unit.weight)

    def _hires(self, pipe: Any, request: GenerationRequest, images: list[Any], first_pass: dict[str, Any]) -> list[Any]:
        """The hires-fix pass: ``images`` resized ``scale`` times (Lanczos; multiples of 8) and
        re-sampled by the img2img pipeline of the same components
        (``AutoPipelineForImage2Image.from_pipe``) at ``denoising_strength`` with the first
        pass's prompts, guidance, steps, seeds and style image (the ControlNet units shaped the
        composition already). ``upscaler`` names an A1111 upscaler: here always Lanczos."""
        import diffusers  # noqa: PLC0415 - diffusers: optional, heavy (the local GPU extra)

        hires = request.hires_fix
        assert hires is not None
        width = max(8, round(first_pass["width"] * hires.scale / 8) * 8)
        height = max(8, round(first_pass["height"] * hires.scale / 8) * 8)
        larger = [image.resize((width, height), Image.Resampling.LANCZOS) for image in images]
        if hires.denoising_strength == 0:
            return larger
        img2img = diffusers.AutoPipelineForImage2Image.from_pipe(pipe)
        img2img.set_progress_bar_config(disable=True)
        parameters = _call_parameters(img2img)
        kwargs = {k: v for k, v in first_pass.items() if k in parameters and k in HIRES_CARRIED}
        kwargs.update(image=larger, strength=hires.denoising_strength)
        kwargs["generator"] = [type(g)(g.device).manual_seed(g.initial_seed()) for g in first_pass["generator"]]
        return list(self._invoke(img2img, kwargs, str(getattr(pipe, "device", "cpu"))).images)

    def _invoke(self, pipe: Any, kwargs: dict[str, Any], device: str) -> Any:
        """The pipeline call itself (the seam a test double replaces to run out of memory)."""
        return pipe(**kwargs)

    def _tune_vae(self, pipe: Any, device: str, request: GenerationRequest, batch_size: int) -> None:
        """On CUDA: VAE slicing (one image decoded at a time) for batches, VAE tiling above
        ``TILE_ABOVE_PIXELS`` (https://huggingface.co/docs/diffusers/optimization/memory)."""
        vae = getattr(pipe, "vae", None)
        if device != "cuda" or vae is None or not hasattr(vae, "enable_tiling"):
            return
        vae.enable_slicing() if batch_size > 1 else vae.disable_slicing()
        vae.enable_tiling() if request.width * request.height > TILE_ABOVE_PIXELS else vae.disable_tiling()

    def _results(self, batch: Sequence[GenerationRequest], rendered: Rendered) -> list[GenerationResult | ProviderError]:
        results: list[GenerationResult | ProviderError] = []
        share = rendered.seconds / len(batch)
        for request, image, seed, prompt, flagged in zip(batch, rendered.images, rendered.seeds, rendered.prompts, rendered.flagged, strict=True):
            if flagged:
                results.append(
                    ContentFilteredError("content filtered: the pipeline's safety checker flagged the image", provider=self.name, model=rendered.model)
                )
                continue
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            metadata: dict[str, Any] = {
                "prompt": prompt,
                "loras": rendered.loras,
                "device": rendered.device,
                "batch_size": len(batch),
                "description": rendered.description,
                **rendered.conditioning,
            }
            if rendered.warmup_s is not None:
                metadata["compile_warmup_s"] = round(rendered.warmup_s, 3)
            try:
                result = result_from_bytes(
                    buffer.getvalue(),
                    provider=self,
                    request=request,
                    model=rendered.model,
                    seed=seed,
                    cost_usd=self.estimate_cost(request),
                    started=time.monotonic() - share,
                    metadata=metadata,
                )
            except ProviderError as exc:
                results.append(exc)
                continue
            results.append(result)
        return results

    def check(self) -> ProviderCheck:
        """Packages, device, and that each configured local path exists (nothing is loaded)."""
        if not self.config.models:
            return ProviderCheck(False, "no models configured (providers.diffusers.models)")
        device, dtype = self.device_and_dtype()
        problems = []
        for name, spec in self.config.models.items():
            path = self._resolve_path(spec.path)
            looks_local = path.startswith((".", "/", "~")) or path.endswith(SINGLE_FILE_SUFFIXES)
            if looks_local and not Path(path).exists():
                problems.append(f"{name}: {spec.path} not found")
            for lora_name, lora in spec.loras.items():
                lora_path = self._resolve_path(lora.path)
                if lora_path.startswith((".", "/", "~")) and not Path(lora_path).exists():
                    problems.append(f"{name}/{lora_name}: {lora.path} not found")
        if problems:
            return ProviderCheck(False, "; ".join(problems))
        return ProviderCheck(True, f"{len(self.config.models)} models on {device} ({str(dtype).removeprefix('torch.')})")

    def close(self) -> None:
        with self._lock:
            self._pipelines.clear()
            self._controlnets.clear()
            self._ip_loaded.clear()
        if "torch" in __import__("sys").modules:
            import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def _call_kwargs(
    steps: int,
    *,
    prompts: list[str],
    negatives: list[str],
    mapped: Any,
    seeds: list[int],
    generator_device: str,
    parameters: Any,
    max_sequence_length: int | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of one pipeline call at ``steps`` steps: one seeded generator per
    image (https://huggingface.co/docs/diffusers/using-diffusers/reusing_seeds), the negative
    prompt and ``max_sequence_length`` only where the pipeline takes them (``parameters``)."""
    import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)

    kwargs: dict[str, Any] = {
        "prompt": prompts,
        "num_inference_steps": steps,
        "width": mapped.width,
        "height": mapped.height,
        "guidance_scale": mapped.guidance_scale,
        "generator": [torch.Generator(generator_device).manual_seed(int(s)) for s in seeds],
    }
    if "negative_prompt" in parameters:
        kwargs["negative_prompt"] = negatives
    if max_sequence_length and "max_sequence_length" in parameters:
        kwargs["max_sequence_length"] = max_sequence_length
    kwargs.update(extra or {})
    return kwargs


#: The first pass's arguments the hires-fix img2img pass takes over.
HIRES_CARRIED = frozenset({"prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "ip_adapter_image", "max_sequence_length"})


def _dtype_key() -> str:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns); older releases know only ``torch_dtype``."""
    import diffusers  # noqa: PLC0415 - diffusers: optional, heavy (the local GPU extra)

    return "dtype" if hasattr(diffusers.utils.deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


def _picture(data: bytes, *, provider: str, model: str) -> Any:
    """``data`` (a control or style image's encoded bytes) as an RGB PIL image; RejectedProviderError when it does not decode."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RejectedProviderError(f"a control or style image does not decode: {type(exc).__name__}", provider=provider, model=model) from exc


def _conditioning(request: GenerationRequest) -> dict[str, Any]:
    """The metadata of what conditioned an image: ControlNet units (module/model, weight), the IP-Adapter and its weight, the hires-fix pass."""
    details: dict[str, Any] = {}
    if request.control_units:
        details["controlnet"] = [f"{c.unit.model}@{c.unit.weight:g}" for c in request.control_units]
    if request.style_reference is not None:
        details["ip_adapter"] = f"{request.style_reference.unit.model}@{request.style_reference.unit.weight:g}"
    if request.hires_fix is not None:
        details["hires_fix"] = {"scale": request.hires_fix.scale, "denoising_strength": request.hires_fix.denoising_strength}
    return details


def _call_parameters(pipe: Any) -> set[str]:

    return set(inspect.signature(pipe.__call__).parameters)
