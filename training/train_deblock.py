"""Recipe: train the compression-artifact removal model ``deblock`` (1x, luma) and export it to ONNX.

Data (never the evaluation material: ``classic5`` and the ``cars`` and ``foreman`` clips are held out):

* still images: luma of ``../shared/data/images/train`` (T91, General100, BSD200) at random
  scales (area downscale 0.5-1.0); every patch is JPEG-compressed afresh as grayscale at a quality
  uniform in 5-40 (blocking and ringing; a new quality and grid for every sample, not one fixed
  encode per image);
* video: segments of real clips (``flower_1280x720.h264``, ``bikes.mp4``, ``testvideo.mp4``,
  ``cockatoo.mp4``), area-downscaled to at most 480 pixels wide (which also hides the sources' own
  coding artifacts), re-encoded as short videos with real libx264 / libx265 at a CRF uniform in
  ``--crf`` (default 30-46)
  (``training.degrade.video_compress``: intra and inter prediction, deblocking filter, the mosquito
  noise and macroblocking of real broadcasts).

Patches are flipped and transposed; ``--video-fraction`` of each batch comes from the video pairs.
Loss L1 on the luma residual, Adam with cosine decay; ``--init`` continues a run from its weights.

Networks: ``--arch plain`` is :class:`training.nets.LumaRestore` (``deblock``, a DnCNN-style stack);
``--arch unet`` is :class:`training.nets.LumaUNet` (``deblock_heavy``), whose lowest level has one
cell per 8x8 block of the frame. It needs the codec's grid where the patch has it: JPEG patches are
compressed after cropping, and ``--align 16`` cuts video patches at multiples of 16 pixels.

Evaluation, also written to ``metrics.json``: ``classic5`` grayscale JPEG q=10 (PSNR gain over the
JPEG) and the raw ``cars`` and ``foreman`` clips encoded by libx264 at CRF 25/30/35/40/45 (PSNR-Y
gain over the decoded video; at CRF 25-30 there is little to remove and a good model does no harm).

    python -m training.train_deblock --arch unet --align 16 --patch 96 --lr 4e-4 --warmup 300 \
        --segments 16 --crf 16 46 --out training/runs/deblock     (``make train-deblock``)
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
from torch import nn

from restora.evaluation import artifact_rows, jpeg_gray, y8
from restora.media import first_frames
from training.degrade import resize, video_compress
from training.export import export_onnx
from training.loop import add_run_args, add_unet_args, fit, run_record, start_run, unet_name
from training.nets import LumaRestore, LumaUNet

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN_SETS = ("T91", "General100", "BSD200")
VIDEOS = (
    "video/misc/flower_1280x720.h264",
    "video/misc/bikes.mp4",
    "video/shots/testvideo.mp4",
    "video/misc/cockatoo.mp4",
)

Pair = tuple[np.ndarray, np.ndarray]  # (clean, degraded) (H, W) uint8 luma
JPEG_QUALITY = (5, 40)  # inclusive range of the training JPEG qualities


def clean_images(root: Path, rng: np.random.Generator, limit: int | None) -> list[np.ndarray]:
    """Luma ``(H, W)`` uint8 of the training images, each at a random scale (area, 0.5-1.0)."""
    files = sorted(p for s in TRAIN_SETS for p in (root / "images/train" / s).glob("*.png"))[: limit or None]
    out = []
    for path in files:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        f = float(rng.uniform(0.5, 1.0))
        if f < 0.95:
            rgb = resize(rgb, max(48, int(rgb.shape[1] * f)), max(48, int(rgb.shape[0] * f)), "area")
        out.append(y8(rgb))
    return out


def video_pairs(
    root: Path, rng: np.random.Generator, segments: int, seg_len: int, max_frames: int,
    crf: tuple[float, float] = (30.0, 46.0),
) -> list[Pair]:  # fmt: skip
    out = []
    for rel in VIDEOS:
        frames = first_frames(root / rel, max_frames)
        h, w = frames[0].shape[:2]
        scale = min(1.0, 480 / w)
        nw, nh = (int(w * scale) // 2) * 2, (int(h * scale) // 2) * 2
        for _ in range(segments):
            s = int(rng.integers(0, max(1, len(frames) - seg_len)))
            clean = np.stack([resize(fr, nw, nh, "area") for fr in frames[s : s + seg_len]])
            codec = "libx264" if rng.random() < 0.75 else "libx265"
            level = float(rng.uniform(*crf))
            deg = video_compress(clean, codec=codec, crf=level, preset="medium")  # type: ignore[arg-type]
            out += [(y8(c), y8(d)) for c, d in zip(clean, deg, strict=True)]
    return out


def sample_batch(
    images: list[np.ndarray], videos: list[Pair], batch: int, patch: int, rng: np.random.Generator,
    video_fraction: float, transpose: bool = True, align: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``(B, 1, patch, patch)`` degraded and clean float32 patches in [0, 1], randomly flipped (and
    transposed if ``transpose``): from a video pair with probability ``video_fraction``, else a crop
    of a training image JPEG-compressed on the spot at a quality uniform in :data:`JPEG_QUALITY`.

    ``align``: video crops start at multiples of it, so a patch keeps the codec's block grid where
    the frame had it (16: H.264 macroblocks and 8x8 / 4x4 transforms); JPEG patches are compressed
    after cropping and so are always aligned. With ``patch`` a multiple of ``align`` flips and
    transposes keep the alignment too."""
    xs, ys = [], []
    for _ in range(batch):
        from_video = bool(videos) and (not images or rng.random() < video_fraction)
        if from_video:
            clean, deg = videos[int(rng.integers(len(videos)))]
        else:
            clean, deg = images[int(rng.integers(len(images)))], None
        h, w = clean.shape
        y0 = int(rng.integers(0, (h - patch) // align + 1)) * align
        x0 = int(rng.integers(0, (w - patch) // align + 1)) * align
        c = np.ascontiguousarray(clean[y0 : y0 + patch, x0 : x0 + patch])
        if deg is None:
            d = jpeg_gray(c, int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
        else:
            d = deg[y0 : y0 + patch, x0 : x0 + patch]
        if rng.random() < 0.5:
            c, d = c[:, ::-1], d[:, ::-1]
        if transpose and rng.random() < 0.5:
            c, d = c.T, d.T
        xs.append(np.ascontiguousarray(d))
        ys.append(np.ascontiguousarray(c))
    x = torch.from_numpy(np.stack(xs).astype(np.float32) / 255.0)[:, None]
    y = torch.from_numpy(np.stack(ys).astype(np.float32) / 255.0)[:, None]
    return x, y


def restore_y(net: nn.Module, y: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 -> restored ``(H, W)`` uint8."""
    with torch.no_grad():
        out = net(torch.from_numpy(y.astype(np.float32) / 255.0)[None, None])[0, 0]
    return np.clip(np.rint(out.numpy() * 255.0), 0, 255).astype(np.uint8)


def evaluate(net: nn.Module, root: Path) -> dict[str, Any]:
    """classic5 JPEG q=10 and cars / foreman H.264 CRF 25/30/35/40/45 (``restora.evaluation.artifact_rows``, the same
    protocol as ``restora eval``): PSNR of input and output, and the gain."""
    net.eval()
    rows = artifact_rows(lambda y: restore_y(net, y).astype(np.float64), root, qualities=(10,))
    net.train()
    res: dict[str, Any] = {}
    for r in rows:
        kind, level = r["degradation"].split()[0], r["degradation"].split()[-1]
        name = f"classic5_jpeg_q{level.split('=')[-1]}" if kind == "JPEG" else f"{r['set'].split()[0]}_h264_crf{level}"
        res[name] = {"input": r["input"], "output": r["model"], "gain": r["gain"]}
    return res


def describe(a: argparse.Namespace) -> str:
    """One line naming the network a run trained."""
    if a.arch == "unet":
        return unet_name(a, "")
    return f"LumaRestore (DnCNN-style residual, {a.blocks + 2} convs, {a.channels} channels, ReLU" + (
        f", body at 1/{a.down} resolution by pixel unshuffle)" if a.down > 1 else ")"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m training.train_deblock")
    add_run_args(ap, iters=6000, lr=1e-3, eval_every=1000, data=DATA)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--down", type=int, default=1, help="pixel-unshuffle factor of the body (2: FFDNet-style)")
    add_unet_args(ap, "plain")
    ap.add_argument("--segments", type=int, default=8, help="video segments per clip")
    ap.add_argument("--seg-len", type=int, default=12, help="frames per video segment")
    ap.add_argument("--max-frames", type=int, default=300, help="frames decoded per clip")
    ap.add_argument("--crf", type=float, nargs=2, default=(30.0, 46.0), help="CRF range of the video re-encodes")
    ap.add_argument("--video-fraction", type=float, default=0.5, help="share of each batch from the video pairs")
    ap.add_argument("--limit-images", type=int, default=0, help="use only N images (smoke tests)")
    ap.add_argument("--init", type=Path, default=None, help="continue from this model.pt (same architecture)")
    a = ap.parse_args(argv)
    rng = start_run(a)
    t0 = time.time()
    images = [y for y in clean_images(a.data, rng, a.limit_images or None) if min(y.shape) >= a.patch]
    videos = video_pairs(a.data, rng, a.segments, a.seg_len, a.max_frames, (a.crf[0], a.crf[1]))
    videos = [p for p in videos if min(p[0].shape) >= a.patch]
    print(f"{len(images)} images + {len(videos)} video pairs in {time.time() - t0:.1f}s", flush=True)

    net: nn.Module = LumaRestore(a.channels, a.blocks, a.down)
    if a.arch == "unet":
        net = LumaUNet(tuple(a.widths), tuple(a.level_blocks))
    if a.init:
        net.load_state_dict(torch.load(a.init, weights_only=True))
    history, train_s = fit(
        net,
        lambda: sample_batch(images, videos, a.batch, a.patch, rng, a.video_fraction, align=a.align),
        a,
        lambda: {k: round(v["gain"], 3) for k, v in evaluate(net, a.data).items()},
    )
    torch.save(net.state_dict(), a.out / "model.pt")
    export_onnx(net, a.out / "model.onnx", "IN_Y", "OUT_Y")
    final = evaluate(net, a.data)
    metrics = {
        "model": "deblock",
        "architecture": describe(a),
        **run_record(a, net),
        "train_seconds": round(train_s, 1),
        "training_pairs": {"images_jpeg_on_the_fly": len(images), "video_frames": len(videos)},
        **{f"psnr_{k}": v for k, v in final.items()},
        "history": history,
    }
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: v for k, v in metrics.items() if k.startswith("psnr_")}, indent=2))


if __name__ == "__main__":
    main()
