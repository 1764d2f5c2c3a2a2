"""Optional image models on output: zero-shot tags (open_clip) and a safety classifier.

Both are off by default and imported lazily: nothing here loads torch or open_clip
unless configured.

* Zero-shot tags: ``tagging.clip_model`` (an open_clip architecture, e.g.
  ``ViT-B-32``) with ``tagging.clip_weights`` (a local file; never downloaded)
  scores every word of ``tagging.vocabulary`` with the prompt ``"a photo of {tag}"``
  (Radford et al., CLIP, 2021, §3.1.4); softmax probabilities at least
  ``clip_threshold`` become tags, best first, at most ``clip_top_k``.
  Install with ``pip install open_clip_torch`` (after ``torch==2.13.0``).
* Safety classifier: ``policy.image_classifier`` = ``"module:function"`` taking a PIL
  image and returning ``{label: probability}`` or a list of ``{"label", "score"}``
  (the shape of a transformers image-classification pipeline). The image is blocked
  when a label in ``policy.image_blocked_labels`` reaches ``policy.image_threshold``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from PIL import Image

from domain.errors import ConfigError
from config.imaging import PolicyConfig, TaggingConfig
from imaging.quality import load_callable

_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()


def _load_clip(config: TaggingConfig) -> Any:
    try:
        import open_clip  # noqa: PLC0415 - open_clip: optional, loads torch
        import torch  # noqa: PLC0415 - torch: optional, heavy (the local GPU extra)
    except ImportError as exc:
        raise ConfigError(f"tagging.clip_model = {config.clip_model!r} needs open_clip: pip install torch==2.13.0 open_clip_torch ({exc})") from exc
    if config.clip_weights is None or not config.clip_weights.is_file():
        raise ConfigError(f"tagging.clip_weights = {str(config.clip_weights)!r}: a local weights file is required (nothing is downloaded)")
    key = (str(config.clip_model), str(config.clip_weights))
    with _models_lock:
        if key not in _models:
            model, _, preprocess = open_clip.create_model_and_transforms(config.clip_model, pretrained=str(config.clip_weights))
            model.eval()
            _models[key] = (model, preprocess, open_clip.get_tokenizer(config.clip_model), torch)
        return _models[key]


def zero_shot_tags(image: Image.Image, config: TaggingConfig) -> list[str]:
    """Tags of ``config.vocabulary`` that open_clip finds in ``image`` (best first).

    Returns [] when no model or vocabulary is configured. Raises ConfigError when
    open_clip is missing or the weights file does not exist.
    """
    if not config.clip_model or not config.vocabulary:
        return []
    model, preprocess, tokenizer, torch = _load_clip(config)
    with torch.no_grad():
        pixels = preprocess(image.convert("RGB")).unsqueeze(0)
        text = tokenizer([f"a photo of {tag}" for tag in config.vocabulary])
        image_features = model.encode_image(pixels)
        text_features = model.encode_text(text)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        probabilities = (100.0 * image_features @ text_features.T).softmax(dim=-1)[0].tolist()
    ranked = sorted(zip(config.vocabulary, probabilities), key=lambda item: -item[1])
    return [tag for tag, p in ranked if p >= config.clip_threshold][: config.clip_top_k]


def _scores(result: Any) -> dict[str, float]:
    if isinstance(result, Mapping):
        return {str(k).lower(): float(v) for k, v in result.items()}
    scores: dict[str, float] = {}
    for item in result or []:
        scores[str(item["label"]).lower()] = float(item["score"])
    return scores


def safety_verdict(image: Image.Image, policy: PolicyConfig) -> str | None:
    """The reason to block ``image`` (``"image classifier: nsfw 0.97 >= 0.50"``), or None.

    None as well when no classifier is configured. Raises ConfigError when the
    configured classifier cannot be imported.
    """
    if not policy.image_classifier:
        return None
    classify = load_callable(policy.image_classifier, field="policy.image_classifier")
    scores = _scores(classify(image))
    blocked = {label.lower() for label in policy.image_blocked_labels}
    hits = sorted(((label, score) for label, score in scores.items() if label in blocked and score >= policy.image_threshold), key=lambda item: -item[1])
    if not hits:
        return None
    label, score = hits[0]
    return f"image classifier: {label} {score:.2f} >= {policy.image_threshold:.2f}"
