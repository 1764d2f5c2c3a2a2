"""Invisible watermark (imaging.watermark): robustness, false positives, visual impact, cost.

What is measured, for real photos (scikit-image's data: astronaut, coffee, chelsea, rocket,
hubble_deep_field, immunohistochemistry, retina, stereo_motorcycle, camera) at their own
size and Lanczos-resized to 1024 px on the long side, and for smooth "generated-like"
images (gradients, blurred colour fields) at 1024 x 1024, each marked with ``--payloads``
random content ids:

* bit accuracy (decoded payload bits equal to the embedded ones, of 64) and whether the
  payload reads back exactly (marker + content id + CRC) after: nothing; strip (re-saved
  as PNG without metadata); JPEG quality 75 (Pillow, 4:2:0); half-size resize (Lanczos);
  all three chained;
* false positives: the same unmarked images, as they are and after the chain, read as
  marked (must be 0);
* PSNR of the marked image against the original (dB, over RGB);
* embedding cost per image (ms, ``time.perf_counter``) at each size, and reading cost;
  then, for the per-image cost in the pipeline, ``--reps`` embeddings of a 1024 x 1024 and a
  2048 x 2048 photo: median wall ms and CPU ms (``time.process_time``, which a loaded
  machine inflates less).

    python benchmarks/watermark_robustness.py [--payloads 3] [--quick] [--reps 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "stereo_motorcycle", "camera"]


def photo(name: str) -> Image.Image:
    import skimage.data

    array = getattr(skimage.data, name)()
    array = array[0] if isinstance(array, tuple) else array
    return Image.fromarray(array).convert("RGB")


def fit(image: Image.Image, long: int = 1024) -> Image.Image:
    scale = long / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)


def generated_like() -> dict[str, Image.Image]:
    yy, xx = np.mgrid[0:1024, 0:1024] / 1024
    field = np.dstack([128 + 100 * np.sin(6 * xx + 3 * yy), 128 + 80 * np.cos(5 * yy), 128 + 60 * np.sin(9 * xx * yy)])
    gradient = np.dstack([xx * 255, yy * 255, (1 - xx) * 200 + 20])
    studio = np.dstack([np.full_like(xx, 235), np.full_like(xx, 232), np.full_like(xx, 228)])
    studio[300:700, 350:650] = [40, 90, 160]  # a flat product on a flat backdrop
    blurred = Image.fromarray(field.astype(np.uint8)).filter(__import__("PIL.ImageFilter").ImageFilter.GaussianBlur(3))
    return {"colour-field": blurred, "gradient": Image.fromarray(gradient.astype(np.uint8)), "studio-flat": Image.fromarray(studio.astype(np.uint8))}


def strip(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def jpeg75(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=75)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


ATTACKS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none": lambda image: image,
    "strip": strip,
    "jpeg75": jpeg75,
    "half": half,
    "chain": lambda image: half(jpeg75(strip(image))),
}


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


def main() -> None:
    from imaging.watermark import decode_bits, embed, payload_bits, read

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payloads", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 photos at 1024 px and the generated-like images only")
    parser.add_argument("--reps", type=int, default=20, help="embeddings timed per size for the cost table")
    args = parser.parse_args()
    images: dict[str, Image.Image] = {}
    for name in PHOTOS[:4] if args.quick else PHOTOS:
        source = photo(name)
        if not args.quick:
            images[f"{name} {source.width}x{source.height}"] = source
        images[f"{name}@1024"] = fit(source)
    images.update(generated_like())
    rng = np.random.default_rng(20)
    exact = dict.fromkeys(ATTACKS, 0)
    trials = 0
    print(f"{'image':34s} {'psnr dB':>8s} {'embed ms':>9s}  bit accuracy none/strip/jpeg75/half/chain (worst of {args.payloads})")
    all_psnr, costs, read_costs, false_pos, unmarked = [], [], [], 0, 0
    for label, image in images.items():
        accs = {name: 1.0 for name in ATTACKS}
        for _ in range(args.payloads):
            cid = int(rng.integers(0, 2**32))
            started = time.perf_counter()
            marked = embed(image, cid)
            costs.append((time.perf_counter() - started) * 1000)
            all_psnr.append(psnr(image, marked))
            trials += 1
            for name, attack in ATTACKS.items():
                attacked = attack(marked)
                started = time.perf_counter()
                reading = read(attacked)
                read_costs.append((time.perf_counter() - started) * 1000)
                exact[name] += reading.found and reading.content_id == f"{cid:08x}"
                accs[name] = min(accs[name], float(np.mean(decode_bits(attacked) == np.asarray(payload_bits(cid)))))
        for attacked in (image, ATTACKS["chain"](image)):
            unmarked += 1
            false_pos += read(attacked).found
        shown = "/".join(f"{accs[name]:.2f}" for name in ATTACKS)
        print(f"{label:34s} {min(all_psnr[-args.payloads :]):8.1f} {statistics.median(costs[-args.payloads :]):9.1f}  {shown}", flush=True)
    print()
    print(f"exact payload read back, of {trials}: " + ", ".join(f"{name} {exact[name]}" for name in ATTACKS))
    print(f"false positives on unmarked images (as they are and after the chain): {false_pos} of {unmarked}")
    print(f"PSNR dB: min {min(all_psnr):.1f}, median {statistics.median(all_psnr):.1f}")
    print(f"embed ms per image: median {statistics.median(costs):.1f}, max {max(costs):.1f}; read ms: median {statistics.median(read_costs):.1f}")
    print()
    print(f"{'embed cost':12s} {'wall ms':>8s} {'CPU ms':>8s}   (median of {args.reps})")
    for side in (1024, 2048):
        image = photo("astronaut").resize((side, side), Image.Resampling.LANCZOS)
        walls, cpus = [], []
        for rep in range(args.reps):
            wall, cpu = time.perf_counter(), time.process_time()
            embed(image, rep)
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        print(f"{side}x{side:<7d} {statistics.median(walls):8.1f} {statistics.median(cpus):8.1f}")


if __name__ == "__main__":
    main()
