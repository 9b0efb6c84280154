"""How seamless a model's tiles are at each overlap: PSNR of tiled against whole-picture output.

    python -m benchmarks.tile_overlap deblock_heavy --tile 160 --overlaps 16 40 64

Input: classic5 ``barbara`` compressed as grayscale JPEG q=10 (``../shared/data``). Tiles are run
through ``restora.tiling.run_tiled`` directly, so the model's own ``restora.overlap`` is not applied.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from restora.evaluation import jpeg_gray
from restora.inference import LocalOnnx
from restora.metrics import psnr
from restora.settings import get_settings
from restora.tiling import run_tiled

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m benchmarks.tile_overlap")
    ap.add_argument("model")
    ap.add_argument("--tile", type=int, default=160)
    ap.add_argument("--overlaps", type=int, nargs="+", default=[16, 40, 64])
    a = ap.parse_args(argv)
    backend = LocalOnnx(get_settings().models.repository, threads=2)
    info = backend.model_info(a.model)
    clean = np.asarray(Image.open(DATA / "images/classic5/barbara.bmp").convert("L"))
    x = jpeg_gray(clean, 10)[None, None].astype(np.float32) / 255.0

    def run(b: np.ndarray) -> np.ndarray:
        return backend.infer(a.model, b)

    whole = run(x)[0, 0] * 255.0
    for ov in a.overlaps:
        tiled = run_tiled(run, x, info.scale, a.tile, overlap=ov, max_batch=info.max_batch, grid=info.grid)
        print(f"overlap {ov:3d}: {psnr(whole, tiled[0, 0] * 255.0, peak=255.0):.2f} dB tiled vs whole", flush=True)


if __name__ == "__main__":
    main()
