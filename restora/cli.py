"""``restora`` command line.

    restora restore INPUT [-o OUTPUT] [--scale 1|2|4] [--preset fidelity]
                    [--stages denoise,deblock:strength=0.5,sr:model=NAME]
    restora probe INPUT [--json]
    restora eval [--json FILE]
    restora eval-sr [--scale 2 4] [--json FILE]
    restora compare SOURCE RESTORED -o still.png
    restora trace RUN_DIR|SPANS_FILE
    restora triton serve|up|down|status
    restora ingest-listener [--host 127.0.0.1] [--port 8080]

``restore`` runs the Prefect flow ``restore-video`` (``flows/restore_video.py``), imported only
when the command runs, so this module itself has no Prefect import. Errors print one line and
exit non-zero: 2 for bad input or configuration, 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restora.errors import ConfigError, RestoraError

if TYPE_CHECKING:
    from restora.media import HdrInfo
    from restora.spec import StageSpec

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


def _quiet_prefect(verbose: bool) -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Restora reports failures itself in one line; Prefect's own tracebacks only with -v.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_INTERNAL_LEVEL", "ERROR")


class ProgressBar:
    """Frames done, frames/s and ETA on stderr (redrawn in place on a terminal, every 5 s otherwise)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr  # looked up now, not at import: the caller may have replaced it
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()
        self.done = self.total = 0

    def __call__(self, done: int, total: int) -> None:
        with self.lock:
            if total and done == 0:
                self.t0 = time.monotonic()
            self.done, self.total = done, total
            now = time.monotonic()
            if now - self.last < (0.2 if self.tty else 5.0) and done < total:
                return
            self.last = now
            self.stream.write(self.render(now) + ("\r" if self.tty else "\n"))
            self.stream.flush()

    def render(self, now: float) -> str:
        el = max(now - self.t0, 1e-6)
        fps = self.done / el
        eta = (self.total - self.done) / fps if fps > 0 else float("nan")
        frac = self.done / self.total if self.total else 0.0
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        eta_s = f"{eta:5.0f}s" if eta == eta else "    ?"
        return f"[{bar}] {self.done}/{self.total} frames {fps:6.2f} fps ETA {eta_s}"

    def finish(self) -> None:
        if self.tty and self.total:
            self.stream.write("\n")


def default_output(inp: str, lossless: bool) -> str:
    """``clip.mp4`` -> ``clip.restored.mp4`` beside it: the source's container where Restora writes
    it (MXF and MPEG-TS included), ``.mp4`` for others, ``.mkv`` for lossless sources."""
    from restora.containers import OUTPUT_CONTAINERS

    p = Path(inp)
    ext = p.suffix.lower() if p.suffix.lower() in OUTPUT_CONTAINERS else ".mp4"
    if lossless:
        ext = ".mkv"
    return str(p.with_name(p.stem + ".restored" + ext))


def deinterlace_text(signal: dict[str, Any]) -> str:
    """``", deinterlaced (bwdif)"`` (with the field rate it went to), or nothing for a progressive source."""
    if not signal["scan"]["deinterlaced"]:
        return ""
    if signal["scan"].get("reinterlaced"):
        first = signal["scan"]["first_field"]["output"]
        return f", restored per field and re-interlaced ({first} field first, {signal['frame_rate']['output']} fps)"
    if signal["scan"].get("field_rate"):
        rates = signal["frame_rate"]
        return f", deinterlaced (bwdif) to field rate: {rates['source']} -> {rates['output']} fps"
    return ", deinterlaced (bwdif)"


def cmd_restore(a: argparse.Namespace) -> int:
    _quiet_prefect(a.verbose)
    if a.triton:
        os.environ["RESTORA_TRITON__URL"] = a.triton
    from restora import media, progress
    from restora.spec import RestoreSpec

    if "://" in a.input:
        if not a.output:
            raise ConfigError("an input URI needs -o/--output")
        output = a.output
    else:
        info = media.probe(a.input)
        output = a.output or default_output(a.input, info.video.lossless)
    stages = parse_stages(a.stages) if a.stages else []
    spec = RestoreSpec(
        input=a.input,
        output=output,
        scale=a.scale,
        preset=a.preset,
        stages=stages,
        crf=a.crf,
        x264_preset=a.x264_preset,
        bit_depth=a.bit_depth,
        chunk_frames=a.chunk_frames,
        field_rate=a.field_rate,
        reinterlace=a.reinterlace,
        mxf_codec=a.mxf_codec,
    )
    from flows.restore_video import run, validate

    validate(spec, None if "://" in a.input else info)  # before Prefect starts
    bar = ProgressBar()
    stop = progress.listen(bar)
    t0 = time.monotonic()
    try:
        result = run(spec, workers=a.workers)
    finally:
        stop()
        bar.finish()
    report = result["report_data"]
    out = report["output"]["probe"]["video"]
    stages_s = ", ".join(f"{k} {v['fps']:.2f} fps" for k, v in report["stages"].items())
    if not stages_s:
        stages_s = "no stage ran (all chunks reused)" if report["provenance"]["stages"] else "no stages"
    hdr = report["signal"]["hdr"]["output"]
    print(f"output:  {result['output']}")
    print(
        f"video:   {out['codec']}{' ' + out['profile'] if out['profile'] else ''} {out['pix_fmt']}"
        f"{', ' + hdr['format'].upper() if hdr else ''}"
        f"{deinterlace_text(report['signal'])}"
    )
    if pcm := report["provenance"]["audio_to_pcm"]:
        print(f"audio:   stream {', '.join(map(str, pcm))} as 24-bit 48 kHz PCM, aligned to the first frame")
    if lost := report["signal"]["not_carried"]:
        print(f"warning: the source's {', '.join(lost)} could not be carried over")
    print(f"report:  {result['report']}")
    print(f"spans:   {result['spans']}")
    print(
        f"summary: {report['input']['probe']['video']['width']}x{report['input']['probe']['video']['height']} -> "
        f"{out['width']}x{out['height']}, {out['frames']} frames, {len(report['shots'])} shots, "
        f"{result['chunks']} chunks ({result['reused_chunks']} reused), {stages_s}, "
        f"{time.monotonic() - t0:.1f}s total"
    )
    return EXIT_OK


def describe_hdr(hdr: HdrInfo) -> str:
    """One line: format, mastering display luminance and primaries, content light levels, dynamic metadata."""
    parts = [hdr.format.upper()]
    md = hdr.mastering_display
    if md is not None:
        points = (md.red, md.green, md.blue, md.white_point)
        prim = ", ".join(f"{n} {p[0]:.4g},{p[1]:.4g}" for n, p in zip("RGBW", points, strict=True))
        parts.append(f"mastering display {md.min_luminance:g}-{md.max_luminance:g} cd/m2 ({prim})")
    if hdr.max_cll is not None:
        parts.append(f"MaxCLL {hdr.max_cll} / MaxFALL {hdr.max_fall} cd/m2")
    if hdr.dynamic:
        parts.append(f"dynamic metadata: {', '.join(hdr.dynamic)}")
    return "; ".join(parts)


def cmd_probe(a: argparse.Namespace) -> int:
    from restora import media

    info = media.probe(a.input)
    if a.json:
        print(json.dumps(info.model_dump(), indent=2))
        return EXIT_OK
    v = info.video
    c = v.color.names
    print(f"file:       {info.path} ({info.container}, {info.size_bytes} bytes, {info.duration_s:.3f} s)")
    print(
        f"video #{v.index}:   {v.codec}{' ' + v.profile if v.profile else ''} {v.width}x{v.height} {v.pix_fmt} "
        f"{v.bit_depth}-bit, {v.frames} frames"
    )
    print(
        f"frame rate: {v.frame_rate} ({float(eval_fraction(v.frame_rate)):.4f} fps), "
        f"{'variable' if v.vfr else 'constant'}; time base {v.time_base}"
    )
    print(
        f"color:      primaries {c['primaries']}, transfer {c['transfer']}, matrix {c['matrix']}, range {c['range']}"
        f"{' (inferred: untagged source)' if v.color.inferred else ''}"
    )
    if v.interlaced:
        # AVFieldOrder names the field coded first, then the one displayed first
        first = {"tt": "top", "bt": "top", "bb": "bottom", "tb": "bottom"}
        declared = f"declared {first[v.field_order]} first, " if v.field_order in first else ""
        print(
            f"scan:       interlaced ({declared}decoded {v.first_field} field first); deinterlaced on restore"
            " (a frame per frame; --field-rate: a frame per field; --reinterlace: per field, woven back)"
        )
    if v.afd is not None:
        print(f"afd:        {v.afd} (Active Format Description); not carried (the pictures are re-encoded)")
    if v.captions:
        print("captions:   CEA-608/708 in the video stream; carried as a CEA-608 track into .mov, not into others")
    if v.vbi_lines:
        print(f"vbi:        {v.vbi_lines} lines of blanking above the picture (IMX / D-10), cut on restore")
    if v.hdr is not None:
        print(f"hdr:        {describe_hdr(v.hdr)}")
    if v.timecode is not None:
        print(f"timecode:   {v.timecode} (start)")
    if v.orientation is not None:
        print(f"display:    rotated {media.rotation_text(v.orientation)} (size above as displayed); decoded upright")
    for s in info.audio:
        print(
            f"audio #{s.index}:   {s.codec} {s.sample_rate} Hz {s.channels} ch"
            f"{' ' + s.layout if s.layout else ''}{' [' + s.language + ']' if s.language else ''}"
        )
    for s in info.subtitles:
        print(f"subtitle #{s.index}: {s.codec}{' [' + s.language + ']' if s.language else ''}")
    if info.chapters:
        titles = ", ".join(f"{ch.start_s:.3f} s {ch.title or '(untitled)'}" for ch in info.chapters[:4])
        more = f", ... ({len(info.chapters)} in all)" if len(info.chapters) > 4 else ""
        print(f"chapters:   {titles}{more}")
    if info.video_streams > 1:
        print(f"note:       {info.video_streams} video streams; restoring #{v.index}")
    return EXIT_OK


def parse_stages(text: str) -> list[StageSpec]:
    """``--stages`` text -> stage specs: comma-separated stages, each ``type[:key=value]...``, e.g.
    ``denoise:strength=0.7,deblock,sr:model=restore_joint_x2``; values are JSON where they parse
    (numbers, booleans), else strings.

    Raises:
        ConfigError: an option without ``=`` or an empty key.
    """
    from restora.spec import StageSpec

    specs = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        kind, *opts = item.split(":")
        options: dict[str, object] = {}
        for opt in opts:
            key, sep, raw = opt.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"stage option {opt!r} in {item!r} is not key=value")
            try:
                options[key.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                options[key.strip()] = raw.strip()
        specs.append(StageSpec(type=kind.strip(), options=options))
    return specs


def eval_fraction(text: str) -> float:
    num, _, den = text.partition("/")
    return float(num) / float(den or 1)


def cmd_eval_sr(a: argparse.Namespace) -> int:
    from restora.evaluation import evaluate_sr_set5, format_table
    from restora.inference import LocalOnnx
    from restora.settings import get_settings

    s = get_settings()
    backend = LocalOnnx(s.models.repository, s.models.threads)
    results = [evaluate_sr_set5(backend, scale, Path(a.data)) for scale in a.scale]
    print(format_table(results))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return EXIT_OK


def cmd_eval(a: argparse.Namespace) -> int:
    from restora.evaluation import evaluate_all
    from restora.inference import LocalOnnx
    from restora.settings import get_settings

    s = get_settings()
    backend = LocalOnnx(s.models.repository, s.models.threads)
    have = {p.name for p in s.models.repository.iterdir() if (p / "config.pbtxt").exists()}
    results = evaluate_all(backend, Path(a.data), have)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return EXIT_OK


def cmd_compare(a: argparse.Namespace) -> int:
    from restora.compare import before_after

    before_after(Path(a.source), Path(a.restored), Path(a.output), frame=a.frame, crop=a.crop)
    print(f"still:   {a.output} (left: bicubic, right: restored; frame {a.frame})")
    return EXIT_OK


def cmd_trace(a: argparse.Namespace) -> int:
    from restora.tracetree import find_span_file, load_spans, render_tree

    print(render_tree(load_spans(find_span_file(Path(a.run)))))
    return EXIT_OK


def cmd_ingest_listener(a: argparse.Namespace) -> int:
    _quiet_prefect(a.verbose)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from flows.on_ingest import serve_listener

    try:
        serve_listener(a.host, a.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {a.host}:{a.port}: {exc.strerror}") from exc
    return EXIT_OK


def cmd_triton(a: argparse.Namespace) -> int:
    from serving import triton_server

    return int(triton_server.main([a.action, *a.rest]) or 0)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="restora", description="AI video restoration pipeline")
    ap.add_argument("-v", "--verbose", action="store_true", help="show Prefect logs and tracebacks")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("restore", help="restore a video (runs the restore-video flow)")
    r.add_argument("input")
    r.add_argument("-o", "--output", help="output file; extension picks the container (.mp4 .mov .mkv .mxf .ts)")
    r.add_argument("--scale", type=int, choices=(1, 2, 4), default=2)
    r.add_argument("--preset", default="fidelity", choices=("fidelity", "forensic", "broadcast", "archival-film"))
    r.add_argument(
        "--stages",
        help="comma-separated stages overriding the preset, each TYPE[:KEY=VALUE]..., "
        "e.g. 'denoise,deblock:strength=0.5,sr' or 'sr:model=restore_joint_x2'",
    )
    r.add_argument("--triton", metavar="URL", help="Triton endpoint host:port (default: in-process ONNX Runtime)")
    r.add_argument(
        "--crf", type=float, default=16.0, help="CRF for lossy outputs: libx264, or libx265 for HDR (default 16)"
    )
    r.add_argument("--x264-preset", default="fast", help="x264 (x265 for HDR) speed preset (default fast)")
    r.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 10),
        default=None,
        help="output bits per sample (default: the source's); 10 keeps restored gradients from banding",
    )
    scan = r.add_mutually_exclusive_group()
    scan.add_argument(
        "--field-rate",
        action="store_true",
        help="interlaced sources: one output frame per field (50i -> 50p) instead of one per frame",
    )
    scan.add_argument(
        "--reinterlace",
        action="store_true",
        help="interlaced sources: restore each field at its own instant, then weave the restored fields back "
        "into interlaced frames (the source's rate, field order and timecode: 50i in, 50i out)",
    )
    r.add_argument(
        "--mxf-codec",
        choices=("dnxhr", "xdcam"),
        default=None,
        help=".mxf output: dnxhr (intra-only DNxHR, the default) or xdcam (XDCAM HD422: 8-bit MPEG-2 4:2:2, "
        "long GOP, 50 Mbit/s HD, what many playout servers take); re-interlaced MXF is always XDCAM HD422",
    )
    r.add_argument("--chunk-frames", type=int, default=120, help="longest chunk of a shot (unit of resume)")
    r.add_argument("--workers", type=int, default=None, help="chunks restored concurrently")
    r.set_defaults(func=cmd_restore)

    p = sub.add_parser("probe", help="describe a media file")
    p.add_argument("input")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe)

    e = sub.add_parser("eval-sr", help="Set5 PSNR-Y of the SR models against bicubic")
    e.add_argument("--scale", type=int, nargs="+", default=[2, 4])
    e.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    e.add_argument("--json", help="also write the results to this file")
    e.set_defaults(func=cmd_eval_sr)

    ev = sub.add_parser("eval", help="every model against bicubic / its input and published numbers (PSNR, SSIM)")
    ev.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ev.add_argument("--json", help="also write the results to this file")
    ev.set_defaults(func=cmd_eval)

    c = sub.add_parser("compare", help="before/after still: bicubic vs restored, same frame")
    c.add_argument("source")
    c.add_argument("restored")
    c.add_argument("-o", "--output", required=True, help="PNG to write")
    c.add_argument("--frame", type=int, default=0)
    c.add_argument("--crop", type=int, default=360, help="center crop edge in output pixels")
    c.set_defaults(func=cmd_compare)

    tr = sub.add_parser("trace", help="print a run's span tree with durations")
    tr.add_argument("run", help="a *.spans.jsonl file (next to the output) or a run directory")
    tr.set_defaults(func=cmd_trace)

    il = sub.add_parser("ingest-listener", help="receive MinIO bucket notifications and start restore runs")
    il.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    il.add_argument("--port", type=int, default=8080)
    il.set_defaults(func=cmd_ingest_listener)

    t = sub.add_parser("triton", help="manage the local Triton server")
    t.add_argument("action", choices=("serve", "up", "down", "status"))
    t.add_argument("rest", nargs=argparse.REMAINDER)
    t.set_defaults(func=cmd_triton)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return int(a.func(a))
    except RestoraError as exc:
        print(f"restora: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("restora: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if a.verbose:
            raise
        print(f"restora: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
