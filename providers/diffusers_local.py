"""Local ``diffusers`` pipelines: SD 1.5, SDXL and FLUX, on CUDA (fp16 / bf16, SDPA) or
the CPU (float32). The only module that imports torch / diffusers, and only when a
pipeline is first needed (install: ``pip install torch==2.13.0`` then the ``local``
extra). https://huggingface.co/docs/diffusers

Models are configured by name (``providers.diffusers.models``): ``path`` (hub id, local
``save_pretrained`` folder, or a single ``.safetensors`` / ``.ckpt`` file), ``pipeline``
(``auto`` reads model_index.json; ``sd15`` / ``sdxl`` / ``flux``), ``vae``, a default
``negative_prompt``, a ``description``, ``scheduler`` (a diffusers scheduler class name)
and LoRAs with ``path``, default ``weight`` and ``trigger_words`` (added to the prompt
while the LoRA is active). ``HUGGINGFACE_TOKEN`` unlocks gated hub models.

A pipeline is loaded once and stays loaded across images (until ``close()``);
``generate_batch`` renders the variations of one template in one pipeline call (one
``torch.Generator`` per seed, so each image is reproducible from its own seed). A
pipeline's safety checker, where the model has one, flags images: ContentFilteredError.
Local: cost 0 unless ``cost_usd`` / ``prices_usd`` are configured.
"""

from __future__ import annotations

import importlib.util
import io
import secrets as random_source
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.domain import GenerationRequest, GenerationResult
from core.errors import (
    AuthBillingProviderError,
    ConfigError,
    ContentFilteredError,
    ProviderError,
    RejectedProviderError,
    TransientProviderError,
)
from providers.base import Provider, ProviderCheck, result_from_bytes
from providers.spec import ModelSpec, ProviderConfig

INSTALL_HINT = "pip install torch==2.13.0 && pip install 'content-pipeline[local]'"
PIPELINE_CLASSES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "flux": "FluxPipeline",
                    "auto": "AutoPipelineForText2Image"}
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")


class LoraConfig(BaseModel):
    """A LoRA: a local file / folder or a hub id, its default weight and trigger words."""

    model_config = ConfigDict(extra="forbid")
    path: str
    weight: Annotated[float, Field(ge=-4, le=4)] = 1.0
    trigger_words: list[str] = Field(default_factory=list)
    weight_name: str | None = None


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


class DiffusersConfig(ProviderConfig):
    """Local ``diffusers`` pipelines (needs the ``local`` extra). ``models`` by name;
    ``model`` picks the default one. fp16 / bf16 with SDPA on CUDA, float32 on CPU.
    ``HUGGINGFACE_TOKEN`` unlocks gated hub models. Local: cost 0 unless priced."""

    enabled: bool = False
    model: str | None = None
    models: dict[str, LocalModelConfig] = Field(default_factory=dict)
    models_dir: Path = Path("models")
    device: Literal["auto", "cuda", "cpu", "mps"] = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    max_batch_size: Annotated[int, Field(ge=1, le=64)] = 4
    local_files_only: bool = False


class DiffusersProvider(Provider):
    """Text-to-image with locally loaded diffusers pipelines."""

    name: ClassVar[str] = "diffusers"
    display_name: ClassVar[str] = "Local diffusers (GPU or CPU)"
    Config = DiffusersConfig
    models: ClassVar[tuple[str, ...]] = ()  # configured by name in providers.diffusers.models
    default_model: ClassVar[str] = ""
    #: A Hugging Face token unlocks gated hub models (optional).
    secret_env: ClassVar[dict[str, tuple[str, ...]]] = {"token": ("HUGGINGFACE_TOKEN", "HF_TOKEN")}
    #: diffusers pipelines take any size divisible by 8 (the VAE's factor).
    default_spec: ClassVar[ModelSpec] = ModelSpec(side_range=(64, 2048), side_multiple=8, steps=(1, 150),
                                                  guidance=(0.0, 30.0), loras=True)

    config: DiffusersConfig

    def __init__(self, *, config: DiffusersConfig, secrets: Any, downloader: Any = None) -> None:
        super().__init__(config=config, secrets=secrets, downloader=downloader)
        missing = [m for m in ("torch", "diffusers", "transformers") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"providers.diffusers: {', '.join(missing)} not installed ({INSTALL_HINT})")
        if config.model and config.model not in config.models:
            raise ConfigError(f"providers.diffusers.model: {config.model!r} is not one of providers.diffusers.models "
                              f"({', '.join(config.models) or 'none configured'})")
        self._pipelines: dict[str, Any] = {}
        self._load_errors: dict[str, ProviderError] = {}
        self._lock = threading.RLock()
        #: How many times a pipeline was loaded / called (a pipeline stays loaded across images).
        self.loads = 0
        self.calls = 0

    @property
    def model(self) -> str:
        return self.config.model or next(iter(self.config.models), "")

    def spec(self, model: str) -> LocalModelConfig:
        """The configuration of model ``model`` (RejectedProviderError when unknown)."""
        try:
            return self.config.models[model]
        except KeyError:
            raise RejectedProviderError(f"unknown local model {model!r} (configured: {', '.join(self.config.models)})",
                                        provider=self.name, model=model) from None

    # -- device and loading -------------------------------------------------------------

    def device_and_dtype(self, family: str = "sd15") -> tuple[str, Any]:
        """(device, torch dtype): CUDA with fp16 (bf16 for FLUX where supported), MPS fp16, else CPU float32."""
        import torch

        device = self.config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
        if self.config.dtype != "auto":
            return device, getattr(torch, self.config.dtype)
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

    def pipeline(self, model: str) -> Any:
        """The loaded pipeline of ``model`` (loaded on first use, then kept)."""
        with self._lock:
            if model in self._pipelines:
                return self._pipelines[model]
            if model in self._load_errors:
                raise self._load_errors[model]
            try:
                pipe = self._load(model, self.spec(model))
            except ProviderError as exc:
                self._load_errors[model] = exc
                raise
            self._pipelines[model] = pipe
            self.loads += 1
            return pipe

    def _load(self, model: str, spec: LocalModelConfig) -> Any:
        import diffusers

        family = spec.pipeline
        device, dtype = self.device_and_dtype(family)
        path = self._resolve_path(spec.path)
        # diffusers renamed torch_dtype to dtype (the old name warns); older releases know only torch_dtype
        dtype_key = "dtype" if hasattr(diffusers.utils.deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"
        common: dict[str, Any] = {dtype_key: dtype}
        token = self.secret("token")
        hub: dict[str, Any] = {"local_files_only": self.config.local_files_only or Path(path).exists()}
        if token:
            hub["token"] = token
        try:
            if spec.vae:
                vae_path = self._resolve_path(spec.vae)
                if vae_path.endswith(SINGLE_FILE_SUFFIXES):
                    common["vae"] = diffusers.AutoencoderKL.from_single_file(vae_path, **{dtype_key: dtype})
                else:
                    common["vae"] = diffusers.AutoencoderKL.from_pretrained(vae_path, **{dtype_key: dtype}, **hub)
            if path.endswith(SINGLE_FILE_SUFFIXES):
                cls = getattr(diffusers, PIPELINE_CLASSES["sd15" if family == "auto" else family])
                pipe = cls.from_single_file(path, **common)
            else:
                cls = getattr(diffusers, PIPELINE_CLASSES[family])
                pipe = cls.from_pretrained(path, **common, **hub)
            if spec.scheduler:
                scheduler_cls = getattr(diffusers, spec.scheduler, None)
                if scheduler_cls is None:
                    raise RejectedProviderError(f"unknown scheduler {spec.scheduler!r} for model {model!r}",
                                                provider=self.name, model=model)
                pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
            for lora_name, lora in spec.loras.items():
                kwargs = {"weight_name": lora.weight_name} if lora.weight_name else {}
                pipe.load_lora_weights(self._resolve_path(lora.path), adapter_name=lora_name, **kwargs, **hub)
            pipe = pipe.to(device)
            if device == "cuda":
                from diffusers.models.attention_processor import AttnProcessor2_0

                denoiser = getattr(pipe, "unet", None)
                if denoiser is not None and hasattr(denoiser, "set_attn_processor"):
                    denoiser.set_attn_processor(AttnProcessor2_0())  # torch SDPA
            pipe.set_progress_bar_config(disable=True)
        except ProviderError:
            raise
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            if any(marker in text for marker in ("401", "403", "gated", "GatedRepo", "Unauthorized")):
                raise AuthBillingProviderError(f"cannot load {model!r} ({spec.path}): {text[:300]} (set HUGGINGFACE_TOKEN)",
                                               provider=self.name, model=model) from exc
            raise RejectedProviderError(f"cannot load {model!r} ({spec.path}): {text[:300]}",
                                        provider=self.name, model=model) from exc
        return pipe

    # -- generation ---------------------------------------------------------------------

    def _adapters(self, pipe: Any, spec: LocalModelConfig, request: GenerationRequest) -> list[tuple[str, float]]:
        """Activate the request's LoRAs (or the model's defaults); returns (name, weight) applied."""
        if not spec.loras:
            return []
        wanted = dict(request.loras) if request.loras is not None else {n: lora.weight for n, lora in spec.loras.items()}
        unknown = [n for n in wanted if n not in spec.loras]
        if unknown:
            raise RejectedProviderError(f"unknown LoRA {unknown[0]!r} (model has: {', '.join(spec.loras)})",
                                        provider=self.name, model=request.model or self.model)
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
        return (request.model, request.width, request.height, request.num_inference_steps, request.guidance_scale,
                request.loras, request.init_image is None)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        outcome = self.generate_batch([request])[0]
        if isinstance(outcome, ProviderError):
            raise outcome
        return outcome

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult | ProviderError]:
        """One result (or the ProviderError of that image) per request, in order.

        Requests sharing ``batch_key`` (the variations of one template) are rendered
        together, ``max_batch_size`` at a time, in one pipeline call each; a failure of
        the whole call (out of memory, a bad size) is that error for each of its images.
        """
        outcomes: list[GenerationResult | ProviderError | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(self.batch_key(request), []).append(index)
        for indices in groups.values():
            for start in range(0, len(indices), self.config.max_batch_size):
                chunk = indices[start:start + self.config.max_batch_size]
                try:
                    results = self._render([requests[i] for i in chunk])
                except ProviderError as exc:
                    results = [exc] * len(chunk)
                for i, result in zip(chunk, results, strict=True):
                    outcomes[i] = result
        return [o for o in outcomes if o is not None]

    def _render(self, batch: list[GenerationRequest]) -> list[GenerationResult | ProviderError]:
        import torch

        first = batch[0]
        model = first.model or self.model
        if first.init_image is not None:
            raise RejectedProviderError("img2img is not offered by the local diffusers provider (use automatic1111 "
                                        "or flux_studio)", provider=self.name, model=model)
        spec = self.spec(model)
        pipe = self.pipeline(model)
        seeds = [r.seed if r.seed is not None else random_source.randbelow(2**32) for r in batch]
        started = time.monotonic()
        with self._lock:
            active = self._adapters(pipe, spec, first)
            prompts = [self.prompt_for(spec, r, active) for r in batch]
            negatives = [r.negative_prompt or spec.negative_prompt or "" for r in batch]
            device = getattr(pipe, "device", torch.device("cpu"))
            generator_device = "cpu" if str(device).startswith("mps") else str(device)
            generators = [torch.Generator(generator_device).manual_seed(int(s)) for s in seeds]
            mapped = self.map(first)  # sides multiples of 8 (the VAE's factor), steps 1..150
            kwargs: dict[str, Any] = {
                "prompt": prompts, "num_inference_steps": mapped.num_inference_steps, "width": mapped.width,
                "height": mapped.height, "guidance_scale": mapped.guidance_scale, "generator": generators,
            }
            if "negative_prompt" in _call_parameters(pipe):
                kwargs["negative_prompt"] = negatives
            try:
                output = pipe(**kwargs)
            except torch.cuda.OutOfMemoryError as exc:
                torch.cuda.empty_cache()
                raise TransientProviderError(f"CUDA out of memory: {str(exc)[:200]}", provider=self.name, model=model) from exc
            except (ValueError, TypeError) as exc:  # check_inputs: sizes, prompt lengths
                raise RejectedProviderError(f"{type(exc).__name__}: {str(exc)[:300]}", provider=self.name, model=model) from exc
            except RuntimeError as exc:
                raise TransientProviderError(f"RuntimeError: {str(exc)[:300]}", provider=self.name, model=model) from exc
            self.calls += 1
        flags = getattr(output, "nsfw_content_detected", None) or [False] * len(batch)
        results: list[GenerationResult | ProviderError] = []
        share = (time.monotonic() - started) / len(batch)
        for request, image, seed, prompt, flagged in zip(batch, output.images, seeds, prompts, flags, strict=True):
            if flagged:
                results.append(ContentFilteredError("content filtered: the pipeline's safety checker flagged the image",
                                                    provider=self.name, model=model))
                continue
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            try:
                result = result_from_bytes(
                    buffer.getvalue(), provider=self, request=request, model=model, seed=seed,
                    cost_usd=self.estimate_cost(request), started=time.monotonic() - share,
                    metadata={"prompt": prompt, "loras": dict(active), "device": str(device), "batch_size": len(batch),
                              "description": spec.description},
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
        if "torch" in __import__("sys").modules:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def _call_parameters(pipe: Any) -> set[str]:
    import inspect

    return set(inspect.signature(pipe.__call__).parameters)
