"""Recipe: train ``restore_joint_x2``, denoising + compression-artifact removal + x2 super-resolution
in one luma network, and export it to ONNX.

Data (never the evaluation material: Set5 and the ``cars`` clip are held out):

* still images: luma of ``../shared/data/images/train`` (T91, General100, BSD200) at three
  pre-scales, bicubic x2 downscale (``training.train_sr.load_pairs``); every LR patch is degraded
  afresh: Gaussian noise (sigma uniform in [0, ``--max-sigma``], 8-bit scale) or, with probability
  0.2, Poisson noise (peak log-uniform in [20, 300]), then with probability 0.85 grayscale JPEG at
  quality uniform in [15, 90];
* video: segments of the training clips (``training.train_deblock.VIDEOS``) area-downscaled to at
  most 640 pixels wide (the HR truth), bicubic x2 down, Gaussian noise sigma in [0, 10] on RGB, then
  real libx264 / libx265 at CRF 26-42 (``training.degrade.video_compress``).

The network is ``LumaSR`` (bicubic skip, PReLU) with more capacity than ``sr_x2`` (48 channels,
6 body convolutions), still fewer operations per pixel than the three-model chain
``denoise -> deblock -> sr_x2`` it replaces. ``--arch unet`` trains :class:`training.nets.LumaUNet`
at x2 instead (the block-aligned U-Net of ``deblock_heavy`` on the LR input, bicubic phases added
before the pixel shuffle; ``--align 16`` keeps video crops on the codec's grid). Loss L1, Adam
with cosine decay. Evaluation
(``restora.evaluation.joint_x2_cases``, the ``restora eval`` protocol): Set5 x2 with sigma 10 +
JPEG q40 and sigma 20 + JPEG q30, cars x2 with sigma 5 + H.264 CRF 35; ``restora eval`` compares
with the chain.

    python -m training.train_joint --iters 5000 --out training/runs/restore_joint_x2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from restora.evaluation import bicubic_x2, joint_x2_cases, jpeg_gray, score_x2, y8
from restora.media import first_frames
from training.degrade import add_noise, downscale, resize, video_compress
from training.export import export_onnx
from training.loop import add_run_args, add_unet_args, fit, run_record, start_run, unet_name
from training.nets import ACTIVATIONS, LumaSR, LumaUNet, body_blocks, deepened, he_init
from training.train_deblock import DATA, VIDEOS
from training.train_sr import load_init, load_pairs

U8Pair = tuple[np.ndarray, np.ndarray]  # (hr (H, W) uint8, lr (H/2, W/2) uint8) luma


def degrade_lr(lr: np.ndarray, rng: np.random.Generator, max_sigma: float) -> np.ndarray:
    """``(h, w)`` uint8 clean LR luma -> noisy, then (usually) JPEG-compressed, uint8."""
    x = lr.astype(np.float64)
    if rng.random() < 0.2:
        peak = float(np.exp(rng.uniform(np.log(20.0), np.log(300.0))))
        x = rng.poisson(x / 255.0 * peak) / peak * 255.0
    else:
        x = x + rng.normal(0.0, float(rng.uniform(0.0, max_sigma)), x.shape)
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if rng.random() < 0.85:
        out = jpeg_gray(out, int(rng.integers(15, 91)))
    return out


def video_pairs(root: Path, rng: np.random.Generator, segments: int, seg_len: int, max_frames: int) -> list[U8Pair]:
    """Pre-degraded pairs from real encodes of the training clips (see the module docstring)."""
    out = []
    for rel in VIDEOS:
        frames = first_frames(root / rel, max_frames)
        h, w = frames[0].shape[:2]
        scale = min(1.0, 640 / w)
        nw, nh = (int(w * scale) // 4) * 4, (int(h * scale) // 4) * 4
        for _ in range(segments):
            s = int(rng.integers(0, max(1, len(frames) - seg_len)))
            hr = [resize(fr, nw, nh, "area") for fr in frames[s : s + seg_len]]
            sigma = float(rng.uniform(0.0, 10.0))
            lr = np.stack([add_noise(downscale(f, 2), sigma, rng) for f in hr])
            codec = "libx264" if rng.random() < 0.75 else "libx265"
            deg = video_compress(lr, codec=codec, crf=float(rng.uniform(26, 42)), preset="medium")  # type: ignore[arg-type]
            out += [(y8(a), y8(b)) for a, b in zip(hr, deg, strict=True)]
    return out


def sample_batch(
    images: list[U8Pair], videos: list[U8Pair], batch: int, patch: int, rng: np.random.Generator, max_sigma: float,
    video_fraction: float, align: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``(B, 1, p, p)`` degraded LR and ``(B, 1, 2p, 2p)`` HR float32 patches in [0, 1], with flips.
    ``align``: video LR crops start at multiples of it (the codec's block grid, as
    ``training.train_deblock.sample_batch``); still patches are compressed after cropping."""
    xs, ys = [], []
    for _ in range(batch):
        from_video = bool(videos) and rng.random() < video_fraction
        hr, lr = (videos if from_video else images)[int(rng.integers(len(videos if from_video else images)))]
        a = align if from_video else 1
        y0 = int(rng.integers(0, (lr.shape[0] - patch) // a + 1)) * a
        x0 = int(rng.integers(0, (lr.shape[1] - patch) // a + 1)) * a
        lp, hp = lr[y0 : y0 + patch, x0 : x0 + patch], hr[2 * y0 : 2 * (y0 + patch), 2 * x0 : 2 * (x0 + patch)]
        if not from_video:
            lp = degrade_lr(np.ascontiguousarray(lp), rng, max_sigma)
        if rng.random() < 0.5:
            lp, hp = lp[:, ::-1], hp[:, ::-1]
        if rng.random() < 0.5:
            lp, hp = lp.T, hp.T
        xs.append(np.ascontiguousarray(lp))
        ys.append(np.ascontiguousarray(hp))
    x = torch.from_numpy(np.stack(xs).astype(np.float32) / 255.0)[:, None]
    y = torch.from_numpy(np.stack(ys).astype(np.float32) / 255.0)[:, None]
    return x, y


def evaluate(net: nn.Module, root: Path) -> dict[str, Any]:
    """PSNR/SSIM-Y of the network and of bicubic on ``restora.evaluation.joint_x2_cases``."""

    def run(y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out: np.ndarray = net(torch.from_numpy(y.astype(np.float32) / 255.0)[None, None])[0, 0].numpy() * 255.0
        return out

    net.eval()
    res = {}
    for case in joint_x2_cases(root):
        name = f"{case['set']} {case['degradation']}"
        m, b = score_x2(case["pairs"], run), score_x2(case["pairs"], bicubic_x2)
        res[name] = {"bicubic": round(b["psnr"], 3), "model": round(m["psnr"], 3), "ssim_model": round(m["ssim"], 4)}
    net.train()
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m training.train_joint")
    add_run_args(ap, iters=5000, lr=1e-3, eval_every=1000, data=DATA)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48, help="LR patch size")
    ap.add_argument("--channels", type=int, default=48)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument(
        "--act",
        choices=ACTIVATIONS,
        default="prelu",
        help="LumaSR activation (lrelu: fused with the convolutions on the CPU; an --init of another "
        "activation keeps its convolutions)",
    )
    add_unet_args(ap, "lumasr")
    ap.add_argument("--max-sigma", type=float, default=25.0)
    ap.add_argument("--video-fraction", type=float, default=0.3)
    ap.add_argument("--segments", type=int, default=6, help="video segments per clip (0: no video)")
    ap.add_argument("--seg-len", type=int, default=10)
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--limit-images", type=int, default=0, help="use only N images (smoke tests)")
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="continue from this model.pt (same channels; fewer body convs: deepened, training.nets.deepened)",
    )
    a = ap.parse_args(argv)
    rng = start_run(a)
    t0 = time.time()
    images = [
        (np.clip(np.rint(hr * 255.0), 0, 255).astype(np.uint8), np.clip(np.rint(lr * 255.0), 0, 255).astype(np.uint8))
        for hr, lr in load_pairs(a.data, 2, 0.0, rng, a.limit_images or None, a.patch)
    ]
    videos = [p for p in video_pairs(a.data, rng, a.segments, a.seg_len, a.max_frames) if min(p[1].shape) >= a.patch]
    print(f"{len(images)} image + {len(videos)} video pairs in {time.time() - t0:.1f}s", flush=True)

    net: nn.Module = LumaSR(2, a.channels, a.blocks, a.act)
    if a.arch == "unet":
        net = LumaUNet(tuple(a.widths), tuple(a.level_blocks), scale=2)
        if a.init:
            net.load_state_dict(torch.load(a.init, weights_only=True))
    elif a.init:
        state = torch.load(a.init, weights_only=True)
        if body_blocks(state) < a.blocks:  # continue a shallower run, deepened without changing its output
            small = LumaSR(2, a.channels, body_blocks(state), "prelu")
            small.load_state_dict(state)
            net = deepened(small, a.blocks)
        else:  # same activation, or another one: the convolutions carry over
            load_init(net, a.init)
    else:
        assert isinstance(net, LumaSR)
        he_init(net)
    history, train_s = fit(
        net,
        lambda: sample_batch(images, videos, a.batch, a.patch, rng, a.max_sigma, a.video_fraction, a.align),
        a,
        lambda: {k: v["model"] for k, v in evaluate(net, a.data).items()},
    )
    torch.save(net.state_dict(), a.out / "model.pt")
    export_onnx(net, a.out / "model.onnx", "LR_Y", "SR_Y")
    metrics = {
        "model": "restore_joint_x2",
        "architecture": (
            unet_name(a, " x2, bicubic residual")
            if a.arch == "unet"
            else f"LumaSR (ESPCN-style, bicubic residual, {a.act}, {a.channels} channels, {a.blocks} body convs)"
        ),
        **run_record(a, net),
        "train_seconds": round(train_s, 1),
        "training_pairs": {"images": len(images), "video_frames": len(videos)},
        "psnr_y": evaluate(net, a.data),
        "history": history,
    }
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics["psnr_y"], indent=2))


if __name__ == "__main__":
    main()
