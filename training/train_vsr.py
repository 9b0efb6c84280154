"""Recipe: train the multi-frame video super-resolution model ``vsr_x4`` and export it to ONNX.

Model: ``LumaSR(scale=4, frames=5)``, early fusion of five consecutive LR luma frames into the same
body as ``sr_x4`` (32 channels, 5 body convolutions, bicubic skip of the middle frame), trained from
scratch (He initialisation) with PReLU; version 2 continues it with ``--act lrelu`` (LeakyReLU, which
ONNX Runtime fuses with the convolutions on the CPU; ``make train-vsr`` lists the stages).
``--init`` can instead start from the shipped single-frame ``sr_x4`` (its first-layer weights on the
middle frame's input, zeros on the neighbours: an exact copy of ``sr_x4``; ``--act lrelu`` for its
version 2) or continue from a ``model.pt`` or a multi-frame ``model.onnx`` of this recipe
(``train_sr.load_init``: with another ``--act`` only the convolutions carry over). Measured with the
first ``sr_x4`` (28.64 dB on the held-out clip; 28.71 since its continued
training): the warm start stays at ``sr_x4``'s quality (28.61 vs 28.64 dB after 8000 iterations)
because the neighbours' weights stay near zero (4 % of the middle frame's norm); from scratch the
network learns to use them and passes ``sr_x4`` after about 5000 iterations. Ablation: ``--frames
1`` with the same first-stage arguments reaches 28.41 dB on the held-out clip, the 5-frame model
28.98 dB.

Data, two kinds of five-frame windows (``--still-fraction`` of the second kind):

* real video: the training clips (``flower_1280x720.h264``, ``bikes.mp4``, ``testvideo.mp4``,
  ``cockatoo.mp4``, ``bigbuckbunny.mp4``), luma area-downscaled to at most 640 pixels wide as HR
  (which hides their own coding artifacts), LR = bicubic x4 of the HR luma (PIL, antialiased, as
  the SR literature's MATLAB ``imresize``). Windows that span a cut (mean absolute LR difference
  above ``--cut-threshold``) are never sampled;
* synthetic motion over the training stills (T91, General100, BSD200, the images ``sr_x4`` learnt
  from): each window moves a crop at a random velocity of up to ``--max-speed`` HR pixels per frame
  with per-frame jitter, and every frame is bicubic-downscaled on its own, so the LR frames sample
  the scene at different quarter-pixel phases (the sub-pixel information multi-frame SR recovers).

Augmentation: flips, transposes, time reversal. A run on real video alone (warm start, lr 5e-4)
stayed below its ``sr_x4`` starting point on the held-out clip (28.44-28.51 dB vs 28.64 after
1000-3000 iterations): its HR frames are softer than real truth, and the model drifted towards them.

Held out for evaluation: the ``cars`` clip (raw I420 truth, 320x240, 30 frames), LR = bicubic x4
of the truth luma: PSNR-Y (border 4) of the model, of the initial (= ``sr_x4``) network and of bicubic.

    python -m training.train_vsr --iters 10000 --lr 1e-3 --still-fraction 0.7 --out training/runs/vsr_x4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restora.evaluation import bicubic_down, bicubic_up, cars_x4, y8
from restora.media import first_frames
from restora.metrics import crop_border, psnr
from training.degrade import resize
from training.export import export_onnx, onnx_weights
from training.loop import add_run_args, fit, run_record, start_run
from training.nets import ACTIVATIONS, LumaSR, he_init
from training.train_deblock import DATA, TRAIN_SETS, VIDEOS
from training.train_sr import load_init

CLIPS = (*VIDEOS, "video/misc/bigbuckbunny.mp4")
SCALE = 4

Clip = tuple[np.ndarray, np.ndarray, np.ndarray]  # HR (T, H, W) uint8, LR (T, H/4, W/4) uint8, valid centres


def load_clip(path: Path, max_frames: int, frames: int, cut_threshold: float) -> Clip:
    rgb = first_frames(path, max_frames)
    h, w = rgb[0].shape[:2]
    s = min(1.0, 640 / w)
    nw, nh = (int(w * s) // SCALE) * SCALE, (int(h * s) // SCALE) * SCALE
    hr = np.stack([y8(resize(f, nw, nh, "area")) for f in rgb])
    lr = np.stack([bicubic_down(f, SCALE) for f in hr])
    diff = np.abs(np.diff(lr.astype(np.float32), axis=0)).mean(axis=(1, 2))  # diff[i]: frame i -> i + 1
    k = frames // 2
    centres = [t for t in range(k, len(lr) - k) if (diff[t - k : t + k] <= cut_threshold).all()]
    return hr, lr, np.array(centres)


def sample_batch(
    clips: list[Clip],
    stills: list[np.ndarray],
    batch: int,
    patch: int,
    frames: int,
    rng: np.random.Generator,
    still_fraction: float = 0.0,
    max_speed: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, frames, p, p)`` LR windows and ``(B, 1, 4p, 4p)`` HR middle frames, float32 in [0, 1]."""
    weights = np.array([len(c[2]) * c[1][0].size for c in clips], np.float64)
    xs, ys = [], []
    k = frames // 2
    while len(xs) < batch:
        if stills and rng.random() < still_fraction:
            window = synthetic_window(stills[int(rng.integers(len(stills)))], patch, frames, max_speed, rng)
            if window is None:
                continue
            lp, hp = window
        else:
            hr, lr, centres = clips[int(rng.choice(len(clips), p=weights / weights.sum()))]
            t = int(centres[rng.integers(len(centres))])
            y0, x0 = int(rng.integers(0, lr.shape[1] - patch + 1)), int(rng.integers(0, lr.shape[2] - patch + 1))
            lp = lr[t - k : t + k + 1, y0 : y0 + patch, x0 : x0 + patch]
            hp = hr[t, SCALE * y0 : SCALE * (y0 + patch), SCALE * x0 : SCALE * (x0 + patch)][None]
        if rng.random() < 0.5:
            lp = lp[::-1]
        if rng.random() < 0.5:
            lp, hp = lp[..., ::-1], hp[..., ::-1]
        if rng.random() < 0.5:
            lp, hp = lp[:, ::-1], hp[:, ::-1]
        if rng.random() < 0.5:
            lp, hp = lp.transpose(0, 2, 1), hp.transpose(0, 2, 1)
        xs.append(np.ascontiguousarray(lp))
        ys.append(np.ascontiguousarray(hp))
    x = torch.from_numpy(np.stack(xs).astype(np.float32) / 255.0)
    y = torch.from_numpy(np.stack(ys).astype(np.float32) / 255.0)
    return x, y


def still_images(root: Path, limit: int | None) -> list[np.ndarray]:
    """``(H, W)`` uint8 luma of the training stills (T91, General100, BSD200)."""
    files = sorted(p for s in TRAIN_SETS for p in (root / "images/train" / s).glob("*.png"))[: limit or None]
    return [y8(np.asarray(Image.open(p).convert("RGB"))) for p in files]


def synthetic_window(
    img: np.ndarray, patch: int, frames: int, max_speed: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """A ``(frames, p, p)`` uint8 LR window of a crop of ``img`` moving at a random velocity (HR pixels
    per frame, +-0.5 pixel jitter, integer HR offsets = quarter-pixel LR phases) and the ``(1, 4p, 4p)``
    HR middle frame; ``None`` when the image is too small. Each frame is downscaled from a crop with a
    2-pixel LR margin (then cut), so no frame sees the crop's edge in its filter support."""
    k, m = frames // 2, 2
    vy, vx = rng.uniform(-max_speed, max_speed, 2)
    offs = [(0, 0) if j == 0 else (round(j * vy + rng.normal(0, 0.5)), round(j * vx + rng.normal(0, 0.5)))
            for j in range(-k, k + 1)]  # fmt: skip
    size = (patch + 2 * m) * SCALE
    lo_y, hi_y = -min(o[0] for o in offs), img.shape[0] - size - max(o[0] for o in offs)
    lo_x, hi_x = -min(o[1] for o in offs), img.shape[1] - size - max(o[1] for o in offs)
    if hi_y < lo_y or hi_x < lo_x:
        return None
    y0, x0 = int(rng.integers(lo_y, hi_y + 1)), int(rng.integers(lo_x, hi_x + 1))
    lr = np.stack([bicubic_down(img[y0 + oy : y0 + oy + size, x0 + ox : x0 + ox + size], SCALE)[m:-m, m:-m]
                   for oy, ox in offs])  # fmt: skip
    e = m * SCALE
    return lr, img[None, y0 + e : y0 + e + patch * SCALE, x0 + e : x0 + e + patch * SCALE]


def init_from_single_frame(net: LumaSR, path: Path) -> None:
    """Load a single-frame ``LumaSR`` ONNX export (same channels and blocks) into the multi-frame
    ``net``: every tensor as is, except the first convolution, whose weights go to the middle
    frame's input (zeros for the others). The result computes exactly what the source model does."""
    weights = onnx_weights(path)
    state = net.state_dict()
    for name, value in state.items():
        if name not in weights:
            raise ValueError(f"{path} has no tensor {name}: not a LumaSR with the same layout and activation (--act)")
        src = weights[name]
        if name == "body.0.weight":
            value.zero_()
            value[:, net.frames // 2 : net.frames // 2 + 1] = src
        elif src.shape == value.shape:
            value.copy_(src)
        else:
            raise ValueError(f"{name}: {tuple(src.shape)} in {path}, {tuple(value.shape)} here")
    net.load_state_dict(state)


def run_video(net: LumaSR, lr: np.ndarray) -> np.ndarray:
    """``(T, h, w)`` uint8 LR luma -> ``(T, 4h, 4w)`` uint8, windows clamped at the ends (as the stage)."""
    k = net.frames // 2
    idx = np.clip(np.arange(len(lr))[:, None] + np.arange(-k, k + 1)[None, :], 0, len(lr) - 1)
    with torch.no_grad():
        out = net(torch.from_numpy(lr[idx].astype(np.float32) / 255.0))[:, 0].numpy()
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def mean_psnr_y(frames: np.ndarray, truth: np.ndarray) -> float:
    """Mean PSNR over ``(T, H, W)`` uint8 luma frames, ``SCALE`` pixels cropped at each border."""
    values = [psnr(crop_border(o, SCALE).astype(np.float64), crop_border(h, SCALE).astype(np.float64), 255.0)
              for o, h in zip(frames, truth, strict=True)]  # fmt: skip
    return float(np.mean(values))


def evaluate(net: LumaSR, hr: np.ndarray, lr: np.ndarray) -> float:
    """Mean PSNR-Y of the network over the clip's frames (border 4)."""
    net.eval()
    out = run_video(net, lr)
    net.train()
    return mean_psnr_y(out, hr)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m training.train_vsr")
    add_run_args(ap, iters=8000, lr=5e-4, eval_every=1000, data=DATA)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=32, help="LR patch size")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--act", choices=ACTIVATIONS, default="prelu", help="activation (an --init ONNX has the same)")
    ap.add_argument("--max-frames", type=int, default=300, help="frames decoded per clip")
    ap.add_argument("--cut-threshold", type=float, default=12.0)
    ap.add_argument("--still-fraction", type=float, default=0.5, help="share of synthetic-motion windows")
    ap.add_argument("--max-speed", type=float, default=3.0, help="synthetic motion, HR pixels per frame")
    ap.add_argument("--limit-images", type=int, default=0, help="use only N stills (smoke tests)")
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from a single-frame LumaSR model.onnx, or continue from a model.pt / model.onnx of this recipe",
    )
    a = ap.parse_args(argv)
    rng = start_run(a)
    t0 = time.time()
    clips = [load_clip(a.data / rel, a.max_frames, a.frames, a.cut_threshold) for rel in CLIPS]
    clips = [c for c in clips if len(c[2]) and min(c[1].shape[1:]) >= a.patch]
    stills = still_images(a.data, a.limit_images or None) if a.still_fraction > 0 else []
    print(f"{len(clips)} clips, {sum(len(c[2]) for c in clips)} windows, {len(stills)} stills "
          f"in {time.time() - t0:.1f}s", flush=True)  # fmt: skip
    hr_eval, lr_eval = cars_x4(a.data)

    net = LumaSR(SCALE, a.channels, a.blocks, a.act, frames=a.frames)
    if a.init and (a.init.suffix == ".pt" or onnx_weights(a.init)["body.0.weight"].shape[1] == a.frames):
        load_init(net, a.init)  # continue a multi-frame run
    elif a.init:
        init_from_single_frame(net, a.init)
    else:
        he_init(net)
    start = evaluate(net, hr_eval, lr_eval)
    print(f"iter 0: cars x4 {start:.3f} dB", flush=True)
    history, train_s = fit(
        net,
        lambda: sample_batch(clips, stills, a.batch, a.patch, a.frames, rng, a.still_fraction, a.max_speed),
        a,
        lambda: {"cars_psnr_y": evaluate(net, hr_eval, lr_eval)},
    )
    torch.save(net.state_dict(), a.out / "model.pt")
    export_onnx(net, a.out / "model.onnx", "LR_Y", "SR_Y", in_channels=a.frames)
    bicubic = np.stack([bicubic_up(f, SCALE) for f in lr_eval]).astype(np.uint8)
    metrics = {
        "model": "vsr_x4",
        "architecture": f"LumaSR x4, {a.frames}-frame early fusion, {a.channels} channels, {a.blocks} body convs, "
        f"{a.act}{', He init' if not a.init else ''}, bicubic skip of the middle frame",
        **run_record(a, net),
        "train_seconds": round(train_s, 1),
        "training_windows": int(sum(len(c[2]) for c in clips)),
        "training_stills": len(stills),
        "psnr_y_cars_x4": {
            "model": evaluate(net, hr_eval, lr_eval),
            "init": start,
            "bicubic": mean_psnr_y(bicubic, hr_eval),
        },
        "history": [{"iter": 0, "cars_psnr_y": start}, *history],
    }
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics["psnr_y_cars_x4"], indent=2))


if __name__ == "__main__":
    main()
