"""SR evaluation on Set5, scored as the SR literature does (PSNR-Y, BT.601, border = scale).

The network path is the production one (``SuperResolution.process`` on RGB frames: luma through the
model, chroma bicubic, quantized to 8-bit RGB), so the numbers are what a user gets. It agrees with
the black-box protocol ``../shared/tools/sr_eval.py`` (which goes through the CLI and a lossless
video) within a few hundredths of a dB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from restora.inference import InferenceBackend
from restora.metrics import psnr_y
from restora.stages.base import StageContext
from restora.stages.sr import SuperResolution

PUBLISHED = {  # Set5 PSNR-Y (dB) from the papers, for the table
    2: {"bicubic": 33.66, "SRCNN": 36.66, "FSRCNN": 37.00, "EDSR": 38.11},
    4: {"bicubic": 28.42, "SRCNN": 30.48, "FSRCNN": 30.72, "ESPCN": 30.90, "EDSR": 32.46},
}


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def evaluate_sr_set5(backend: InferenceBackend, scale: int, data: Path, model: str | None = None) -> dict[str, Any]:
    """Per-image and mean PSNR-Y of ``model`` (default ``sr_x{scale}``) and of bicubic (PIL) on
    Set5's MATLAB-bicubic LR images."""
    base = data / "images" / "Set5"
    stage = SuperResolution(StageContext(backend=backend), scale=scale, model=model)
    rows = []
    for hr_p in sorted((base / "HR").glob("*.png")):
        lr = _rgb(base / f"LR_bicubic/X{scale}/{hr_p.stem}x{scale}.png")
        h, w = lr.shape[0] * scale, lr.shape[1] * scale
        hr = _rgb(hr_p)[:h, :w]
        sr = stage.process(lr[None])[0]
        bic = np.asarray(Image.fromarray(lr).resize((w, h), Image.Resampling.BICUBIC))
        rows.append({"image": hr_p.stem, "model": psnr_y(sr, hr, scale), "bicubic": psnr_y(bic, hr, scale)})
    info = backend.model_info(stage.model or "")
    return {
        "set": "Set5",
        "scale": scale,
        "model": stage.model,
        "model_version": info.version,
        "backend": backend.name,
        "images": rows,
        "mean_model": float(np.mean([r["model"] for r in rows])),
        "mean_bicubic": float(np.mean([r["bicubic"] for r in rows])),
        "published": PUBLISHED.get(scale, {}),
    }


def format_table(results: list[dict[str, Any]]) -> str:
    """A plain-text table of :func:`evaluate_sr_set5` results."""
    lines = []
    for r in results:
        lines.append(f"Set5 x{r['scale']}  ({r['model']} v{r['model_version']}, {r['backend']})")
        lines.append(f"  {'image':12s} {'restora':>8s} {'bicubic':>8s} {'gain':>6s}")
        for row in r["images"]:
            lines.append(
                f"  {row['image']:12s} {row['model']:8.2f} {row['bicubic']:8.2f} {row['model'] - row['bicubic']:6.2f}"
            )
        lines.append(
            f"  {'mean':12s} {r['mean_model']:8.2f} {r['mean_bicubic']:8.2f} {r['mean_model'] - r['mean_bicubic']:6.2f}"
        )
        pub = ", ".join(f"{k} {v:.2f}" for k, v in r["published"].items())
        lines.append(f"  published: {pub}")
    return "\n".join(lines)
