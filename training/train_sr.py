"""Recipe: train the luma super-resolution model (``LumaSR``) and export it to ONNX.

Data: ``../shared/data/images/train`` (T91, General100, BSD200), never the evaluation sets.
Degradation: MATLAB-like bicubic downscale (PIL, antialiased) of the HR image, at three
pre-scales of the HR image (1.0, 0.75, 0.5, the usual multi-scale augmentation); a fraction
of samples (``--degraded-fraction``) get a mild random blur/noise/JPEG degradation instead
(``training.degrade.mild_sr_degradation``), for robustness on real footage.
Loss L1, Adam, cosine learning-rate decay. Evaluated on Set5 (PSNR-Y, border = scale).

    python -m training.train_sr --scale 2 --iters 6000 --out training/runs/sr_x2

writes ``model.onnx``, ``model.pt`` and ``metrics.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from restora.color import rgb_to_y
from restora.metrics import psnr_y
from training.degrade import bicubic_resize, downscale, mild_sr_degradation
from training.export import export_onnx, onnx_weights
from training.loop import add_run_args, fit, run_record, start_run
from training.nets import ACTIVATIONS, LumaSR

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN_SETS = ("T91", "General100", "BSD200")
PRESCALES = (1.0, 0.75, 0.5)


def load_pairs(
    root: Path,
    scale: int,
    degraded_fraction: float,
    rng: np.random.Generator,
    limit: int | None,
    min_lr: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return ``[(hr_y (H, W) float32, lr_y (H/s, W/s) float32)]`` in [0, 1]."""
    files = sorted(p for s in TRAIN_SETS for p in (root / "images/train" / s).glob("*.png"))
    if limit:
        files = files[:limit]
    pairs = []
    for path in files:
        img = np.asarray(Image.open(path).convert("RGB"))
        for pre in PRESCALES:
            h, w = int(img.shape[0] * pre), int(img.shape[1] * pre)
            hr = img if pre == 1.0 else bicubic_resize(img, w, h)
            h, w = (h // scale) * scale, (w // scale) * scale
            if h < min_lr * scale or w < min_lr * scale:
                continue
            hr = np.ascontiguousarray(hr[:h, :w])
            lr = mild_sr_degradation(hr, scale, rng) if rng.random() < degraded_fraction else downscale(hr, scale)
            pairs.append((rgb_to_y(hr), rgb_to_y(lr)))
    return pairs


def sample_batch(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    batch: int,
    patch: int,
    scale: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned LR/HR patches with flips and transposes: ``(B,1,p,p)``, ``(B,1,ps,ps)``."""
    weights = np.array([lr.size for _, lr in pairs], dtype=np.float64)
    idx = rng.choice(len(pairs), size=batch, p=weights / weights.sum())
    xs, ys = [], []
    for i in idx:
        hr, lr = pairs[i]
        y0 = int(rng.integers(0, lr.shape[0] - patch + 1))
        x0 = int(rng.integers(0, lr.shape[1] - patch + 1))
        lp = lr[y0 : y0 + patch, x0 : x0 + patch]
        hp = hr[y0 * scale : (y0 + patch) * scale, x0 * scale : (x0 + patch) * scale]
        if rng.random() < 0.5:
            lp, hp = lp[:, ::-1], hp[:, ::-1]
        if rng.random() < 0.5:
            lp, hp = lp[::-1], hp[::-1]
        if rng.random() < 0.5:
            lp, hp = lp.T, hp.T
        xs.append(np.ascontiguousarray(lp))
        ys.append(np.ascontiguousarray(hp))
    return torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(ys)[:, None])


def evaluate_set5(net: LumaSR, scale: int, root: Path) -> dict[str, float]:
    """Set5 PSNR-Y of the network on the standard MATLAB-bicubic LR images (luma only)."""
    base = root / "images/Set5"
    out: dict[str, float] = {}
    net.eval()
    with torch.no_grad():
        for hr_p in sorted((base / "HR").glob("*.png")):
            lr = np.asarray(Image.open(base / f"LR_bicubic/X{scale}/{hr_p.stem}x{scale}.png").convert("RGB"))
            hr = np.asarray(Image.open(hr_p).convert("RGB"))[: lr.shape[0] * scale, : lr.shape[1] * scale]
            y = torch.from_numpy(rgb_to_y(lr))[None, None]
            sr = net(y)[0, 0].clamp(0, 1).numpy()
            sr = np.rint(sr * 255.0) / 255.0  # quantized to 8 bits, as a delivered frame is
            out[hr_p.stem] = psnr_y(sr.astype(np.float32), rgb_to_y(hr), crop=scale)
    net.train()
    out["mean"] = float(np.mean(list(out.values())))
    return out


def load_init(net: LumaSR, path: Path) -> None:
    """Warm start from a ``model.pt`` state dict or from the named weights of an exported ONNX model.
    When activations differ (a ReLU or LeakyReLU twin of a PReLU model, or the reverse) only the
    convolutions carry over; any other mismatch raises ``ValueError``."""
    weights = onnx_weights(path) if path.suffix == ".onnx" else torch.load(path, weights_only=True)
    own = net.state_dict()
    state = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in state]
    slopes = {f"{name}.weight" for name, m in net.named_modules() if isinstance(m, nn.PReLU)}
    if set(missing) - slopes:
        raise ValueError(f"{path} does not fit this network: no {sorted(set(missing) - slopes)}")
    net.load_state_dict(state, strict=False)
    print(f"init from {path}: {len(state)} tensors, not in the file: {missing or 'none'}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, iters=6000, lr=2e-3, eval_every=500, data=DATA)
    ap.add_argument("--scale", type=int, choices=(2, 3, 4), required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--patch", type=int, default=0, help="LR patch size (default 96/scale)")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--degraded-fraction", type=float, default=0.1)
    ap.add_argument("--limit-images", type=int, default=0, help="use only N images (smoke tests)")
    ap.add_argument(
        "--act", choices=ACTIVATIONS, default="prelu", help="activation (relu: INT8-friendly; lrelu: fused on the CPU)"
    )
    ap.add_argument("--name", default=None, help="model name in metrics.json (default sr_x<scale>)")
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this model.pt, or from the convolution weights of an exported model.onnx",
    )
    a = ap.parse_args(argv)

    rng = start_run(a)
    patch = a.patch or 96 // a.scale
    t0 = time.time()
    pairs = load_pairs(a.data, a.scale, a.degraded_fraction, rng, a.limit_images or None, patch)
    print(f"{len(pairs)} training pairs loaded in {time.time() - t0:.1f}s", flush=True)

    net = LumaSR(a.scale, a.channels, a.blocks, a.act)
    if a.init:
        load_init(net, a.init)
    history, train_s = fit(
        net,
        lambda: sample_batch(pairs, a.batch, patch, a.scale, rng),
        a,
        lambda: {"set5_psnr_y": evaluate_set5(net, a.scale, a.data)["mean"]},
    )
    final = evaluate_set5(net, a.scale, a.data)
    torch.save(net.state_dict(), a.out / "model.pt")
    export_onnx(net, a.out / "model.onnx", "LR_Y", "SR_Y")
    metrics = {
        "model": a.name or f"sr_x{a.scale}",
        "architecture": f"LumaSR (ESPCN-style, bicubic residual, {a.act}, {a.channels} ch, {a.blocks} body convs)",
        **run_record(a, net),
        "train_seconds": round(train_s, 1),
        "set5_psnr_y": final,
        "history": history,
    }
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({"set5_psnr_y": final}, indent=2))


if __name__ == "__main__":
    main()
