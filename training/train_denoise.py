"""Recipe: train the blind denoising model ``denoise`` (1x, luma) and export it to ONNX.

Data (never the evaluation material: ``classic5`` and the ``cars`` clip are held out): clean luma
of ``../shared/data/images/train`` (T91, General100, BSD200) at random scales (area downscale
0.5-1.0) and frames of the training clips of ``training.train_deblock.VIDEOS``, area-downscaled to
at most 480 pixels wide (which hides their own coding artifacts).

Noise is drawn afresh for every patch, so the network never sees the same noise twice and has to
estimate its level itself (blind): with probability ``--poisson-fraction`` shot noise with
``peak`` photons at white, log-uniform in [5, 200] (variance grows with brightness, as a sensor's),
otherwise additive white Gaussian noise with sigma uniform in [0, ``--max-sigma``] on the 8-bit
scale. Noisy values are clipped and quantized to 8 bits, as decoded video is.

Loss L1 on the residual, Adam with cosine decay. Evaluation (``restora.evaluation.noise_rows``, the
``restora eval`` protocol): classic5 at Gaussian sigma 15/25/50 and Poisson peak 30, the cars clip's
luma at sigma 25, each against the noisy input and the best Gaussian blur.

    python -m training.train_denoise --iters 6000 --out training/runs/denoise
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from restora.evaluation import noise_rows, y8
from restora.media import first_frames
from training.degrade import resize
from training.export import export_onnx
from training.loop import add_run_args, fit, run_record, start_run
from training.nets import LumaRestore
from training.train_deblock import DATA, TRAIN_SETS, VIDEOS, restore_y, sample_batch


def clean_images(
    root: Path, rng: np.random.Generator, limit: int | None, video_every: int, max_frames: int
) -> list[np.ndarray]:
    """Clean ``(H, W)`` uint8 luma: the training images at a random scale, then every
    ``video_every``-th frame of each training clip (``video_every`` 0: no video)."""
    files = sorted(p for s in TRAIN_SETS for p in (root / "images/train" / s).glob("*.png"))[: limit or None]
    out = []
    for path in files:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        f = float(rng.uniform(0.5, 1.0))
        if f < 0.95:
            rgb = resize(rgb, max(48, int(rgb.shape[1] * f)), max(48, int(rgb.shape[0] * f)), "area")
        out.append(y8(rgb))
    if video_every:
        for rel in VIDEOS:
            frames = first_frames(root / rel, max_frames)[::video_every]
            h, w = frames[0].shape[:2]
            scale = min(0.5, 480 / w)
            out += [y8(resize(fr, int(w * scale), int(h * scale), "area")) for fr in frames]
    return out


def add_blind_noise(
    x: torch.Tensor, rng: np.random.Generator, max_sigma: float, poisson_fraction: float
) -> torch.Tensor:
    """``(B, 1, p, p)`` clean float32 in [0, 1] -> noisy, clipped and quantized to 8 bits; each
    patch gets its own noise kind and level."""
    out = torch.empty_like(x)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    for i in range(x.shape[0]):
        if rng.random() < poisson_fraction:
            peak = float(np.exp(rng.uniform(np.log(5.0), np.log(200.0))))
            out[i] = torch.poisson(x[i] * peak, generator=gen) / peak
        else:
            sigma = float(rng.uniform(0.0, max_sigma)) / 255.0
            out[i] = x[i] + sigma * torch.randn(x[i].shape, generator=gen)
    return torch.round(out.clamp(0.0, 1.0) * 255.0) / 255.0


def evaluate(net: LumaRestore, root: Path) -> dict[str, Any]:
    """``restora.evaluation.noise_rows``: input, best blur and model PSNR per noise level."""
    net.eval()
    rows = noise_rows(lambda y: restore_y(net, y).astype(np.float64), root)
    net.train()
    res: dict[str, Any] = {}
    for r in rows:
        kind, level = r["degradation"].split()
        name = f"{'classic5' if r['set'] == 'classic5' else 'cars'}_{kind}_{level.split('=')[1]}"
        res[name] = {"input": r["input"], "best_blur": r["best_blur"], "output": r["model"], "gain": r["gain"]}
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m training.train_denoise")
    add_run_args(ap, iters=6000, lr=1e-3, eval_every=1000, data=DATA)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--max-sigma", type=float, default=55.0, help="largest Gaussian sigma (8-bit scale)")
    ap.add_argument("--poisson-fraction", type=float, default=0.3)
    ap.add_argument("--video-every", type=int, default=10, help="use every N-th frame of the clips (0: none)")
    ap.add_argument("--max-frames", type=int, default=300, help="frames decoded per clip")
    ap.add_argument("--limit-images", type=int, default=0, help="use only N images (smoke tests)")
    a = ap.parse_args(argv)
    rng = start_run(a)
    t0 = time.time()
    clean = [c for c in clean_images(a.data, rng, a.limit_images or None, a.video_every, a.max_frames)
             if min(c.shape) >= a.patch]  # fmt: skip
    pairs = [(c, c) for c in clean]
    print(f"{len(clean)} clean images in {time.time() - t0:.1f}s", flush=True)

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        _, y = sample_batch([], pairs, a.batch, a.patch, rng, 1.0, transpose=False)  # clean crops, flipped
        return add_blind_noise(y, rng, a.max_sigma, a.poisson_fraction), y

    net = LumaRestore(a.channels, a.blocks)
    history, train_s = fit(
        net, next_batch, a, lambda: {k: round(v["gain"], 3) for k, v in evaluate(net, a.data).items()}
    )
    torch.save(net.state_dict(), a.out / "model.pt")
    export_onnx(net, a.out / "model.onnx", "IN_Y", "OUT_Y")
    final = evaluate(net, a.data)
    metrics = {
        "model": "denoise",
        "architecture": f"LumaRestore (DnCNN-style residual, {a.blocks + 2} convs, {a.channels} channels, ReLU)",
        **run_record(a, net),
        "train_seconds": round(train_s, 1),
        "training_images": len(clean),
        **{f"psnr_{k}": v for k, v in final.items()},
        "history": history,
    }
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: v for k, v in metrics.items() if k.startswith("psnr_")}, indent=2))


if __name__ == "__main__":
    main()
