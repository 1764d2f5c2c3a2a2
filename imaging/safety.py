"""Image safety: the NudeNet detector on every image a provider made (not on the offline placeholders), on CPU.

NudeNet 3.4 (https://github.com/notAI-tech/NudeNet, ``pip install nudenet``) ships
its ONNX detector inside the wheel (``nudenet/320n.onnx``, a YOLOv8n trained on 18
body-part classes: ``config.imaging.NUDENET_CLASSES``) and runs it with onnxruntime:
nothing is downloaded at run time. Each detection is a class, a score (0..1) and a
box ``[x, y, width, height]`` in pixels of the image.

``detect(image, config)`` returns the detections at or above
``config.record_threshold`` (recorded on the image row, ``images.safety``);
``blocking(detections, config)`` names the first detection of a blocked class at or
above its threshold (``ImageSafetyConfig.thresholds``, else ``default_threshold``).
A blocked image is never uploaded (imaging.postprocess sets the row ``blocked``).
"""

from __future__ import annotations

import threading
from typing import Any

from PIL import Image

from domain.errors import ConfigError
from config.imaging import ImageSafetyConfig
import os
import numpy as np

_detectors: dict[int, Any] = {}
_lock = threading.Lock()


def detector(resolution: int = 320) -> Any:
    """The process's NudeDetector for ``resolution`` (loaded once; thread-safe).

    Raises ConfigError when nudenet / onnxruntime are not installed."""
    with _lock:
        if resolution not in _detectors:
            try:
                import onnxruntime  # noqa: PLC0415 - onnxruntime: heavy, only when a real image is checked
                from nudenet import NudeDetector  # noqa: PLC0415 - NudeNet loads onnxruntime: only when a real image is checked
            except ImportError as exc:
                raise ConfigError(f"policy.image_safety needs NudeNet: pip install nudenet onnxruntime ({exc})") from exc
            _detectors[resolution] = _nude_detector(NudeDetector, onnxruntime, resolution)
        return _detectors[resolution]


def session_options(onnxruntime: Any) -> Any:
    """One thread per call, no spinning: each image's task thread runs its own inference.

    onnxruntime's defaults (an intra-op pool of one thread per core whose threads spin
    while they wait for work) cost twice the CPU of one thread per call on the 2-core
    machine (36 against 18 ms per 1024 px image), and the spinning threads compete with
    the images processed meanwhile; the pipeline already runs several images at once."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _nude_detector(detector_class: Any, onnxruntime: Any, resolution: int) -> Any:
    """A NudeDetector over NudeNet's shipped model with ``session_options``. NudeNet 3.4's
    constructor takes no session options: this sets what it sets (``onnx_session``,
    ``input_width``, ``input_height``, ``input_name``) on an instance of its class."""

    import nudenet  # noqa: PLC0415 - NudeNet loads onnxruntime: only when a real image is checked

    model = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
    made = detector_class.__new__(detector_class)
    made.onnx_session = onnxruntime.InferenceSession(model, sess_options=session_options(onnxruntime), providers=["CPUExecutionProvider"])
    made.input_width = made.input_height = resolution
    made.input_name = made.onnx_session.get_inputs()[0].name
    return made


def detect(image: Image.Image, config: ImageSafetyConfig) -> list[dict[str, Any]]:
    """NudeNet's detections in ``image`` with a score of at least ``config.record_threshold``,
    best first: ``[{"class": "FACE_FEMALE", "score": 0.812, "box": [x, y, w, h]}]``."""

    # NudeNet converts its input with OpenCV's RGBA -> BGR, then feeds the network RGB
    pixels = np.ascontiguousarray(np.asarray(image.convert("RGBA")))
    found = run_detector(detector(config.resolution), pixels)
    detections = [
        {"class": str(d["class"]), "score": round(float(d["score"]), 3), "box": [int(v) for v in d["box"]]}
        for d in found
        if float(d["score"]) >= config.record_threshold
    ]
    return sorted(detections, key=lambda d: -d["score"])


def blocking(detections: list[dict[str, Any]], config: ImageSafetyConfig) -> str | None:
    """Why the image is blocked (``"image safety: FEMALE_BREAST_EXPOSED 0.81 >= 0.50"``), or None."""
    blocked = set(config.blocked_classes)
    for detection in detections:
        name, score = detection["class"], float(detection["score"])
        if name in blocked and score >= config.threshold(name):
            return f"image safety: {name} {score:.2f} >= {config.threshold(name):.2f}"
    return None


def run_detector(made: Any, pixels: Any) -> list[dict[str, Any]]:
    """``NudeDetector.detect(pixels)`` of NudeNet 3.4, with its post-processing's Python
    loop over every anchor (2100 at 320 px, 3.6 ms with the GIL held per image) run only
    over the anchors whose best class score reaches NudeNet's 0.2 (found in one numpy
    step); the same arithmetic on the same rows in the same order, so the same detections."""
    from nudenet import nudenet as nn  # noqa: PLC0415 - NudeNet loads onnxruntime: only when a real image is checked

    blob, _x_ratio, _y_ratio, x_pad, y_pad, width, height = nn._read_image(pixels, made.input_width)
    output = made.onnx_session.run(None, {made.input_name: blob})
    return _postprocess(output, x_pad, y_pad, width, height, made.input_width, made.input_height)


def _postprocess(output: Any, x_pad: int, y_pad: int, width: int, height: int, model_width: int, model_height: int) -> list[dict[str, Any]]:
    """nudenet.nudenet._postprocess (3.4) over the rows a vectorised 0.2 threshold keeps."""
    import cv2  # noqa: PLC0415 - OpenCV: optional
    from nudenet import nudenet as nn  # noqa: PLC0415 - NudeNet loads onnxruntime: only when a real image is checked

    labels = getattr(nn, "__labels")
    outputs = np.transpose(np.squeeze(output[0]))
    candidates = np.flatnonzero(outputs[:, 4:].max(axis=1) >= 0.2)
    boxes: list[list[Any]] = []
    scores: list[Any] = []
    class_ids: list[Any] = []
    for row in candidates:
        classes_scores = outputs[row][4:]
        max_score = np.amax(classes_scores)
        class_id = np.argmax(classes_scores)
        x, y, w, h = outputs[row][0:4]
        x = x - w / 2
        y = y - h / 2
        x = x * (width + x_pad) / model_width
        y = y * (height + y_pad) / model_height
        w = w * (width + x_pad) / model_width
        h = h * (height + y_pad) / model_height
        x = max(0, min(x, width))
        y = max(0, min(y, height))
        w = min(w, width - x)
        h = min(h, height - y)
        class_ids.append(class_id)
        scores.append(max_score)
        boxes.append([x, y, w, h])
    indices = cv2.dnn.NMSBoxes(boxes, scores, 0.25, 0.45)
    detections = []
    for i in indices:
        x, y, w, h = boxes[i]
        detections.append({"class": labels[class_ids[i]], "score": float(scores[i]), "box": [int(x), int(y), int(w), int(h)]})
    return detections
