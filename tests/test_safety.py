"""Image safety with NudeNet's shipped ONNX detector on real photos (scikit-image): it
runs on CPU, reports what it sees, and a configured class it finds blocks the image
before anything is uploaded; the detections are recorded on the row."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from domain.errors import ConfigError
from config.imaging import ImageSafetyConfig
from config.settings import load_settings
from imaging.safety import blocking, detect
from tests.conftest import a1111_config
from tests.servers import A1111Server, photo
from tests.rows import flow_summary


def _photo(name: str, side: int = 512) -> Image.Image:
    return Image.open(io.BytesIO(photo(side, side, name)))


def test_the_wheel_ships_the_detector() -> None:
    import nudenet

    model = Path(nudenet.__file__).parent / "320n.onnx"
    assert model.is_file() and model.stat().st_size > 1_000_000  # loaded from the package: nothing downloads


def test_detector_reports_what_it_sees() -> None:
    config = ImageSafetyConfig()
    astronaut = detect(_photo("astronaut"), config)
    assert astronaut[0]["class"] == "FACE_FEMALE" and astronaut[0]["score"] > 0.6
    x, y, w, h = astronaut[0]["box"]
    assert 0 <= x < 512 and 0 <= y < 512 and 40 < w < 300 and 40 < h < 300  # Eileen Collins' face, upper middle
    camera = detect(_photo("camera"), config)
    assert [d["class"] for d in camera] == ["FACE_MALE"]
    for name in ("chelsea", "coffee", "rocket"):  # a cat, a cup, a launch: no person
        found = detect(_photo(name), config)
        assert not any(d["class"].startswith("FACE") for d in found), (name, found)
        assert blocking(found, config) is None
    assert blocking(astronaut, config) is None  # a face is not a blocked class by default


def test_a_configured_class_blocks_with_its_threshold() -> None:
    found = detect(_photo("astronaut"), ImageSafetyConfig())
    strict = ImageSafetyConfig(blocked_classes=["FACE_FEMALE"])
    assert blocking(found, strict) == f"image safety: FACE_FEMALE {found[0]['score']:.2f} >= 0.50"
    lenient = ImageSafetyConfig(blocked_classes=["FACE_FEMALE"], thresholds={"FACE_FEMALE": 0.95})
    assert blocking(found, lenient) is None


def test_unknown_classes_are_configuration_errors(tmp_path: Path) -> None:
    config = tmp_path / "content-pipeline.yaml"
    config.write_text("policy:\n  image_safety:\n    blocked_classes: [NAKED]\n")
    with pytest.raises(
        ConfigError,
        match=r"content-pipeline.yaml:3: field 'policy.image_safety.blocked_classes' = \['NAKED'\]: "
        r"Value error, unknown NudeNet class 'NAKED'",
    ):
        load_settings(config)


pytestmark_flows = pytest.mark.usefixtures("prefect_server")


@pytestmark_flows
def test_pipeline_blocks_a_detected_class_and_records_detections(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate
    from wiring.runtime import get_runtime

    with A1111Server(default="photo:astronaut") as server:
        make_config(**a1111_config(server.url), dedup={"enabled": False}, policy={"image_safety": {"blocked_classes": ["FACE_FEMALE"]}})
        summary = flow_summary(generate(template="ceramic-mug", count=2, batch="nudenet", return_state=True))
    assert [i.status for i in summary.images] == ["blocked", "blocked"]
    for row in get_runtime().db.images():
        assert row.error is not None and row.error.startswith("content policy: image safety: FACE_FEMALE 0.")
        assert row.safety and row.safety[0]["class"] == "FACE_FEMALE"
        assert row.storage_key is None
    assert not (tmp_path / "output" / "content").exists()


@pytestmark_flows
def test_pipeline_records_detections_of_a_published_image(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.adhoc import generate
    from wiring.runtime import get_runtime

    with A1111Server(default="photo:astronaut") as server:
        make_config(**a1111_config(server.url))
        summary = flow_summary(generate(template="ceramic-mug", count=1, batch="faces", return_state=True))
    assert [i.status for i in summary.images] == ["done"]
    row = get_runtime().db.images()[0]
    assert row.safety is not None and [d["class"] for d in row.safety] == ["FACE_FEMALE"]


def test_the_detector_runs_one_thread_per_call_without_spinning() -> None:
    """onnxruntime's default intra-op pool spins on every core: one thread per call, each
    image's task thread running its own inference, costs half the CPU (imaging.safety)."""
    import onnxruntime

    from imaging.safety import detector, session_options

    options = session_options(onnxruntime)
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    made = detector(320)
    assert made.input_width == made.input_height == 320 and made.input_name
    assert made.onnx_session.get_session_options().intra_op_num_threads == 1


def test_the_detections_are_nudenets_own() -> None:
    """imaging.safety runs NudeNet's post-processing over the anchors that can pass its 0.2
    threshold only: the detections are exactly those of NudeDetector.detect."""
    import numpy as np

    from imaging.safety import detector, run_detector

    made = detector(320)
    for name, side in (("astronaut", 512), ("camera", 512), ("chelsea", 384), ("coffee", 640), ("rocket", 320)):
        pixels = np.ascontiguousarray(np.asarray(_photo(name, side).convert("RGBA")))
        assert run_detector(made, pixels) == made.detect(pixels), name
    crowd = np.ascontiguousarray(np.tile(np.asarray(_photo("astronaut", 256).convert("RGBA")), (2, 3, 1)))
    assert len(made.detect(crowd)) > 1 and run_detector(made, crowd) == made.detect(crowd)  # several faces, NMS


@pytestmark_flows
def test_a_placeholder_is_not_given_to_the_detector(make_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A placeholder is our own rendering of the prompt's text, never published as content:
    the offline run does not load NudeNet for it (onnxruntime, OpenCV and the model are
    about 75 MiB of the offline run's memory). A provider's image is checked (the tests above)."""
    import imaging.safety
    from flows.adhoc import generate
    from wiring.runtime import get_runtime

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("NudeNet called for a placeholder")

    monkeypatch.setattr(imaging.safety, "detect", refuse)
    make_config(chain=["placeholder"])
    summary = flow_summary(generate(template="ceramic-mug", count=1, batch="offline", return_state=True))
    assert [i.status for i in summary.images] == ["placeholder"]
    [row] = get_runtime().db.images()
    assert row.is_placeholder and row.safety is None and row.storage_key
