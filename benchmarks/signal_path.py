"""What the 16-bit and HDR paths cost against the 8-bit one, in one run.

The same pictures (the first frames of ``../shared/data/video/misc/bikes.mp4``) restored x2 by
``sr_x2`` through :func:`restora.pipeline.restore_chunk`, three ways:

- ``8bit``: an 8-bit H.264 source, uint8 frames, libx264 8-bit out (the baseline);
- ``10bit_out``: the same source with ``bit_depth=10``, uint16 frames, libx264 High 10 out;
- ``hdr10``: the pictures as a 10-bit HEVC HDR10 source (PQ tags, mastering metadata), uint16
  frames, x265 Main 10 out with the metadata.

The variants alternate run by run so machine noise hits them alike; the median of ``--repeats``
per variant, split into decode / stages / encode seconds, and each total as a ratio to ``8bit``.

    python -m benchmarks.signal_path     (make bench)   -> benchmarks/results/signal_path.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from restora import media
from restora.inference import LocalOnnx
from restora.pipeline import restore_chunk
from restora.settings import get_settings
from restora.spec import ShotSpec
from restora.stages import StageContext, build_stage

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "signal_path.json"
HDR10 = "hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"


def mux_repaired(c: av.container.OutputContainer, packets: list[av.Packet], last: int | None) -> int | None:
    """Mux ``packets`` with impossible decode timestamps repaired (libx265 leaves those of a stream of
    one or two frames unset: ``media.repair_dts``); returns the last DTS written."""
    for p in packets:
        if p.pts is not None and p.dts is not None:
            p.dts = last = media.repair_dts(p.pts, p.dts, last, -media.MAX_DTS_LAG)
        c.mux(p)
    return last


def sources(tmp: Path, frames: int) -> dict[str, Path]:
    """The first ``frames`` pictures of bikes.mp4 as an 8-bit H.264 and a 10-bit HDR10 HEVC clip."""
    pics = media.first_frames(DATA / "video/misc/bikes.mp4", frames)
    out = {}
    for name, codec, pix, opts, tags in (
        ("8bit", "libx264", "yuv420p", {"crf": "12", "preset": "fast"}, (1, 1, 1)),
        ("hdr10", "libx265", "yuv420p10le", {"crf": "12", "x265-params": f"log-level=error:{HDR10}"}, (9, 16, 9)),
    ):
        path = tmp / f"{name}.mp4"
        with av.open(str(path), "w") as c:
            s = c.add_stream(codec, rate=25)
            s.width, s.height, s.pix_fmt = pics[0].shape[1], pics[0].shape[0], pix
            s.codec_context.options = opts
            cc = s.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = (*tags, 1)
            last: int | None = None
            for i, rgb in enumerate(pics):
                f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix)
                f.pts, f.time_base = i, Fraction(1, 25)
                last = mux_repaired(c, s.encode(f), last)
            mux_repaired(c, s.encode(), last)
        out[name] = path
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m benchmarks.signal_path")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    ctx = StageContext(backend=LocalOnnx(get_settings().models.repository))
    sr = [build_stage("sr", {"scale": 2}, ctx)]
    runs: dict[str, list[dict[str, float]]] = {"8bit": [], "10bit_out": [], "hdr10": []}
    with tempfile.TemporaryDirectory(prefix="restora-bench-") as tmpdir:
        tmp = Path(tmpdir)
        src = sources(tmp, a.frames)
        variants = {"8bit": (src["8bit"], None), "10bit_out": (src["8bit"], 10), "hdr10": (src["hdr10"], None)}
        prepared = {}
        for name, (path, depth) in variants.items():
            info = media.probe(path)
            index, _, _ = media.scan(path, info)
            params = media.choose_encode(info, 2, "o.mp4", 16, "fast", depth)
            prepared[name] = (path, info, index, params)
        chunk = ShotSpec(shot=0, chunk=0, start=0, stop=a.frames, start_s=0.0, end_s=a.frames / 25)
        for rep in range(a.repeats + 1):  # the first round warms up
            for name, (path, info, index, params) in prepared.items():
                t = time.perf_counter()
                res = restore_chunk(path, info, index, chunk, sr, params, tmp / f"{name}.mov")
                total = time.perf_counter() - t
                if rep:
                    stages = sum(res.stage_seconds.values())
                    runs[name].append({"total": total, "decode": res.decode_seconds, "stages": stages,
                                       "encode": res.encode_seconds})  # fmt: skip
    threads = get_settings().models.threads
    med = {n: {k: float(np.median([r[k] for r in rs])) for k in rs[0]} for n, rs in runs.items()}
    report: dict[str, Any] = {
        "frames": a.frames,
        "input": f"{prepared['8bit'][1].video.width}x{prepared['8bit'][1].video.height}, x2 by sr_x2",
        "repeats": a.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, ONNX Runtime threads {threads or 'all'}",
        "variants": {
            n: {
                "output": f"{prepared[n][3].codec} {prepared[n][3].pix_fmt}",
                **{f"{k}_s": round(v, 3) for k, v in m.items()},
                "fps": round(a.frames / m["total"], 2),
                "total_vs_8bit": round(m["total"] / med["8bit"]["total"], 3),
            }
            for n, m in med.items()
        },
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    for n, v in report["variants"].items():
        print(f"{n:10s} {v['output']:26s} {v['fps']:6.2f} fps  decode {v['decode_s']:.2f}  stages "
              f"{v['stages_s']:.2f}  encode {v['encode_s']:.2f} s  total x{v['total_vs_8bit']:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
