"""Recreate ``samples/bbb_sample.mp4`` (the demo clip) from ../shared/data/video/misc/bigbuckbunny.mp4.

Big Buck Bunny (c) copyright 2008, Blender Foundation, www.bigbuckbunny.org, CC BY 3.0.
The sample is the first 3 s, downscaled to 480x270 (area filter) and re-encoded with libx264 CRF 20,
with the AAC audio packets of the same 3 s copied as they are:

    python samples/make_sample.py
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

SRC = Path(__file__).resolve().parents[2] / "shared/data/video/misc/bigbuckbunny.mp4"
DST = Path(__file__).resolve().parent / "bbb_sample.mp4"
SECONDS = 3.0


def main() -> None:
    with av.open(str(SRC)) as src, av.open(str(DST), "w", options={"movflags": "+faststart"}) as out:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = 480, 270, "yuv420p"
        vout.time_base = vin.time_base
        vout.codec_context.time_base = vin.time_base
        vout.codec_context.options = {"crf": "20", "preset": "slow"}
        for attr, val in (("color_primaries", 1), ("color_trc", 1), ("colorspace", 1), ("color_range", 1)):
            setattr(vout.codec_context, attr, val)
        aout = out.add_stream_from_template(ain)
        limit = Fraction(SECONDS)
        for frame in src.decode(vin):
            if frame.pts * vin.time_base >= limit:
                break
            small = frame.reformat(width=480, height=270, format="yuv420p", interpolation="AREA")
            small.pts, small.time_base = frame.pts, frame.time_base
            for pkt in vout.encode(small):
                out.mux(pkt)
        for pkt in vout.encode():
            out.mux(pkt)
        src.seek(0)
        for pkt in src.demux(ain):
            if pkt.size == 0 or pkt.pts is None or pkt.pts * ain.time_base >= limit:
                continue
            pkt.stream = aout
            out.mux(pkt)
    print(f"wrote {DST} ({DST.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
