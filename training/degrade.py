"""Degradation operators that turn clean training images into realistic low-quality inputs.

Fixed operators (``add_noise(img, sigma)``) are separate from random ones
(``random_degradation(img, rng)``); every random function takes a ``numpy.random.Generator``,
never the global RNG (reproducible recipes).

Images are ``(H, W, 3)`` uint8 RGB unless stated otherwise.

Operators:

* blur: :func:`gaussian_blur` (isotropic), :func:`anisotropic_gaussian_kernel`,
  :func:`motion_kernel`, applied with :func:`apply_kernel`;
* resize: :func:`resize` (bicubic / area / bilinear), :func:`downscale`;
* noise: :func:`add_noise` (Gaussian), :func:`add_poisson_noise` (shot noise);
* compression: :func:`jpeg`, and :func:`video_compress` — real H.264 / HEVC through PyAV
  (libx264 / libx265) at a chosen CRF or bitrate, the source of the mosquito noise and
  macroblocking the deblock model learns to remove;
* :func:`second_order_degradation` — two rounds of blur, resize, noise and compression in
  random order and strength, as in Real-ESRGAN (Wang et al. 2021);
* damage over clips ``(T, H, W, 3)``: :func:`flicker`, :func:`camera_over` (a camera path, for
  jitter), :func:`dust`, :func:`scratches`, :func:`film_grain` — what ``deflicker``, ``stabilize``,
  ``dust_scratch`` and ``degrain`` are tested and benchmarked against.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from restora.color import Frames, quantize, to_unit
from restora.media import codec_roundtrip

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
ResizeMethod = Literal["bicubic", "area", "bilinear"]
_PIL_RESIZE = {
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
}


def bicubic_resize(img: U8, width: int, height: int) -> U8:
    """Antialiased bicubic resize (PIL, a = -0.5, close to MATLAB ``imresize``)."""
    return np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.BICUBIC))


def resize(img: U8, width: int, height: int, method: ResizeMethod = "bicubic") -> U8:
    """Antialiased resize with ``method`` (``area`` = box filter: the mean of the covered pixels)."""
    return np.asarray(Image.fromarray(img).resize((width, height), _PIL_RESIZE[method]))


def downscale(img: U8, scale: int) -> U8:
    """Bicubic downscale by an integer factor; ``img`` must be a multiple of ``scale`` in size."""
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"{w}x{h} is not a multiple of {scale}")
    return bicubic_resize(img, w // scale, h // scale)


def gaussian_blur(img: U8, sigma: float) -> U8:
    """Isotropic Gaussian blur with standard deviation ``sigma`` pixels."""
    if sigma <= 0:
        return img
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=sigma)))


def anisotropic_gaussian_kernel(sigma_x: float, sigma_y: float, theta: float, size: int = 21) -> F32:
    """``(size, size)`` float32 Gaussian kernel with axes ``sigma_x``/``sigma_y`` pixels rotated by
    ``theta`` radians, summing to 1 (``size`` odd)."""
    if size % 2 == 0 or sigma_x <= 0 or sigma_y <= 0:
        raise ValueError("size must be odd and sigmas positive")
    r = size // 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    c, s_ = np.cos(theta), np.sin(theta)
    u, v = c * xx + s_ * yy, -s_ * xx + c * yy
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).astype(np.float32)


def motion_kernel(length: float, angle: float, size: int = 21) -> F32:
    """``(size, size)`` float32 linear motion-blur kernel: a line of ``length`` pixels at ``angle``
    radians through the centre (sub-pixel sampled), summing to 1."""
    if size % 2 == 0 or length <= 0:
        raise ValueError("size must be odd and length positive")
    k = np.zeros((size, size), dtype=np.float64)
    r = size // 2
    for t in np.linspace(-length / 2, length / 2, max(2, int(np.ceil(length * 4)))):
        x, y = r + t * np.cos(angle), r + t * np.sin(angle)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                    k[y0 + dy, x0 + dx] += wy * wx
    return (k / k.sum()).astype(np.float32)


def apply_kernel(img: U8, kernel: F32) -> U8:
    """Convolve each channel with ``kernel`` (reflect padding, FFT), rounded back to uint8."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    h, w = img.shape[:2]
    x = np.pad(img.astype(np.float32), ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    shape = (x.shape[0] + kh - 1, x.shape[1] + kw - 1)
    kf = np.fft.rfft2(kernel, shape)
    full = np.fft.irfft2(np.fft.rfft2(x, shape, axes=(0, 1)) * kf[..., None], shape, axes=(0, 1))
    out = full[2 * ph : 2 * ph + h, 2 * pw : 2 * pw + w]  # "same" part of the padded image, padding cut
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def add_poisson_noise(img: U8, peak: float, rng: np.random.Generator) -> U8:
    """Shot noise: each value ``v`` becomes ``Poisson(v / 255 * peak) / peak * 255``; smaller ``peak``
    (photons at white) is noisier, the variance grows with brightness."""
    lam = img.astype(np.float64) / 255.0 * peak
    noisy = rng.poisson(lam).astype(np.float64) / peak * 255.0
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def add_noise(img: U8, sigma: float, rng: np.random.Generator) -> U8:
    """Additive white Gaussian noise, ``sigma`` on the 8-bit scale, quantized back to uint8."""
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(img: U8, quality: int) -> U8:
    """JPEG round trip at ``quality`` (1-95), 4:2:0 chroma as most encoders use."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def video_compress(
    frames: Sequence[U8] | U8,
    codec: Literal["libx264", "libx265"] = "libx264",
    crf: float | None = 28,
    bitrate: int | None = None,
    preset: str = "medium",
    rate: int = 25,
) -> U8:
    """Encode ``frames`` with a real video encoder (PyAV, in memory, yuv420p) and decode them back:
    :func:`restora.media.codec_roundtrip` on RGB frames.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB (or a list of ``(H, W, 3)``); odd sizes are edge-padded
            for 4:2:0 and cropped back.
        codec, crf, bitrate, preset, rate: as :func:`restora.media.codec_roundtrip`.

    Returns:
        ``(T, H, W, 3)`` uint8 RGB, the decoded frames in order.
    """
    arr = np.asarray(frames, dtype=np.uint8)
    if arr.ndim == 3:
        arr = arr[None]
    _, h, w, _ = arr.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        arr = np.pad(arr, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    yuv = [av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
           for rgb in arr]  # fmt: skip
    dec = [f.to_ndarray(format="rgb24") for f in codec_roundtrip(yuv, codec, crf, bitrate, preset, rate)]
    return np.stack(dec)[:, :h, :w]


def _random_blur(img: U8, rng: np.random.Generator, strength: float) -> U8:
    kind = rng.choice(["iso", "aniso", "motion"], p=[0.45, 0.45, 0.1])
    if kind == "iso":
        s = float(rng.uniform(0.2, 3.0 * strength))
        return apply_kernel(img, anisotropic_gaussian_kernel(s, s, 0.0))
    if kind == "aniso":
        a, b = (float(v) for v in rng.uniform(0.2, 3.0 * strength, 2))
        return apply_kernel(img, anisotropic_gaussian_kernel(a, b, float(rng.uniform(0, np.pi))))
    return apply_kernel(img, motion_kernel(float(rng.uniform(1.0, 6.0 * strength)), float(rng.uniform(0, np.pi))))


def _random_noise(img: U8, rng: np.random.Generator, strength: float) -> U8:
    if rng.random() < 0.6:
        return add_noise(img, float(rng.uniform(1.0, 20.0 * strength)), rng)
    return add_poisson_noise(img, float(rng.uniform(40.0 / strength, 800.0)), rng)


def _random_compression(img: U8, rng: np.random.Generator, strength: float) -> U8:
    if rng.random() < 0.5:
        return jpeg(img, int(rng.integers(max(5, int(95 - 65 * strength)), 96)))
    codec = "libx264" if rng.random() < 0.7 else "libx265"
    return video_compress(img, codec=codec, crf=float(rng.uniform(18, 18 + 22 * strength)), preset="veryfast")[0]


def second_order_degradation(hr: U8, scale: int, rng: np.random.Generator, strength: float = 1.0) -> U8:
    """Real-ESRGAN-style "high-order" degradation: two rounds of (blur, random resize, noise,
    compression), each step skipped with some probability, then a final resize to ``1/scale``.

    Args:
        hr: ``(H, W, 3)`` uint8, a multiple of ``scale`` in size.
        scale: overall downscale factor (1 = same size: restoration without SR).
        rng: the generator all randomness comes from.
        strength: scales blur, noise and compression ranges (1 = Real-ESRGAN-like, 0.5 = milder).

    Returns:
        ``(H/scale, W/scale, 3)`` uint8.
    """
    h, w = hr.shape[:2]
    img = hr
    methods: list[ResizeMethod] = ["bicubic", "area", "bilinear"]
    for round_, (lo, hi) in enumerate(((0.4, 1.2), (0.6, 1.1))):
        if rng.random() < (0.9 if round_ == 0 else 0.7):
            img = _random_blur(img, rng, strength)
        if scale > 1:  # random rescale on the way down (also up a little), as Real-ESRGAN
            f = float(rng.uniform(lo, hi))
            cur_h, cur_w = img.shape[:2]
            img = resize(img, max(8, round(cur_w * f)), max(8, round(cur_h * f)), methods[int(rng.integers(3))])
        if rng.random() < 0.8:
            img = _random_noise(img, rng, strength)
        if rng.random() < 0.8:
            img = _random_compression(img, rng, strength)
    if img.shape[:2] != (h // scale, w // scale):
        img = resize(img, w // scale, h // scale, methods[int(rng.integers(3))])
    return img


def mild_sr_degradation(hr: U8, scale: int, rng: np.random.Generator) -> U8:
    """Random mild degradation for SR robustness: slight blur, bicubic downscale, noise, JPEG.

    Args:
        hr: ``(H, W, 3)`` uint8, a multiple of ``scale`` in size.
        scale: integer downscale factor.
        rng: the generator all randomness comes from.

    Returns:
        ``(H/scale, W/scale, 3)`` uint8 low-resolution image.
    """
    img = gaussian_blur(hr, float(rng.uniform(0.2, 0.8))) if rng.random() < 0.5 else hr
    lr = downscale(img, scale)
    if rng.random() < 0.5:
        lr = add_noise(lr, float(rng.uniform(0.5, 3.0)), rng)
    if rng.random() < 0.5:
        lr = jpeg(lr, int(rng.integers(75, 96)))
    return lr


# Film and camera damage over clips, for the classical temporal stages' tests and benchmarks
# (``deflicker``, ``stabilize``, ``dust_scratch``): ``(T, H, W, 3)`` uint8 or uint16 RGB in and out.


def flicker(
    frames: Frames,
    rng: np.random.Generator,
    gain: float = 0.12,
    offset: float = 0.04,
    tilt: float = 0.0,
    vignette: float = 0.0,
    color: float = 0.0,
) -> Frames:
    """Each frame times its own random gain plus a random offset (normal, std ``gain`` around 1 and
    ``offset`` of full scale around 0, clipped at 2 std, as every draw here), the same on R, G and B;
    with ``tilt``, ``vignette`` or ``color``, flicker that differs across the frame and by channel:
    the gain also times ``1 + tx x + ty y`` (``x``, ``y`` in [-1, 1] across the frame, ``tx``, ``ty``
    of std ``tilt``: light brighter on one side, a different side each frame), times
    ``1 - v (x^2 + y^2) / 2`` (``v`` of std ``vignette`` around 0: the corners breathing), times
    ``1 + c`` per channel (``c`` of std ``color``: colour breathing). Without them the draws, and
    so the frames, are what they were before these arguments existed."""
    t, h, w, _ = frames.shape

    def draw(std: float, *shape: int) -> npt.NDArray[np.float64]:
        return std * rng.standard_normal((t, *shape)).clip(-2, 2)

    a = (1 + draw(gain)).astype(np.float32)[:, None, None, None]
    b = draw(offset).astype(np.float32)[:, None, None, None]
    if tilt or vignette or color:
        x = ((np.arange(w, dtype=np.float32) + 0.5) * 2 / w - 1)[None, None, :, None]
        y = ((np.arange(h, dtype=np.float32) + 0.5) * 2 / h - 1)[None, :, None, None]
        tx, ty, v = (draw(std).astype(np.float32)[:, None, None, None] for std in (tilt, tilt, vignette))
        c = draw(color, 3).astype(np.float32)[:, None, None, :]
        a = a * (1 + tx * x + ty * y) * (1 - v * (x * x + y * y) / 2) * (1 + c)
    return quantize(to_unit(frames) * a + b, frames.dtype)


def camera_over(still: F32, path: npt.NDArray[np.float64], height: int, width: int, margin: int = 20) -> U8:
    """Frames of a camera looking at ``still`` (``(H, W, 3)`` float32 in [0, 1]) from ``path``
    (``(T, 2)`` x, y in pixels, sub-pixel, cubic resampling; or ``(T, 3)`` with the picture's turn in
    radians about the frame's centre, as :func:`restora.stages.motion.rotate_image` turns), each
    ``(height, width)`` from ``margin`` pixels in: ``(T, height, width, 3)`` uint8."""
    from restora.stages.motion import rotate_image, shift_image

    frames = []
    for x, y, *turn in path:
        if turn and turn[0]:
            # the frame and a margin all round, turned about the frame's centre, then the frame
            around = shift_image(still, -x, -y)[: height + 2 * margin, : width + 2 * margin]
            crop = rotate_image(around, float(turn[0]))[margin : margin + height, margin : margin + width]
        else:
            crop = shift_image(still, -x - margin, -y - margin)[:height, :width]
        frames.append(quantize(crop, np.dtype(np.uint8)))
    return np.stack(frames)


def dust(frames: Frames, rng: np.random.Generator, per_frame: int = 15) -> tuple[Frames, npt.NDArray[np.bool_]]:
    """Dirt on the film: ``per_frame`` elliptic spots per frame (radius 1-4 pixels), each on one frame
    only, nearly black or nearly white (80 % opaque). Returns the frames and the ``(T, H, W)`` mask
    of spot pixels."""
    out = to_unit(frames).copy()
    t_, h, w, _ = frames.shape
    mask = np.zeros((t_, h, w), dtype=bool)
    yy, xx = np.mgrid[0:h, 0:w]
    for t in range(t_):
        for _ in range(per_frame):
            cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.uniform(1, 4)
            spot = ((yy - cy) / r) ** 2 + ((xx - cx) / (r * rng.uniform(0.5, 1.5))) ** 2 <= 1
            level = rng.choice([0.05, 0.95]) * rng.uniform(0.8, 1.0)
            out[t][spot] = out[t][spot] * 0.2 + np.float32(level * 0.8)
            mask[t] |= spot
    return quantize(out, frames.dtype), mask


def scratches(frames: Frames, rng: np.random.Generator, count: int = 3) -> Frames:
    """Vertical line scratches: ``count`` one-pixel-wide lines through the whole height, each brighter
    or darker by 0.12-0.3 of full scale, wandering +-2 pixels sideways over the frames."""
    out = to_unit(frames).copy()
    w = frames.shape[2]
    xs = rng.integers(10, w - 10, count)
    contrast = (rng.choice([-1.0, 1.0], count) * rng.uniform(0.12, 0.3, count)).astype(np.float32)
    for t in range(len(frames)):
        for i in range(count):
            x = int(xs[i] + 2 * np.sin(t / 5 + i))
            out[t, :, x] += contrast[i]
    return quantize(out, frames.dtype)


def film_grain(frames: Frames, rng: np.random.Generator, sigma: float = 0.04) -> Frames:
    """Film grain: new each frame, slightly correlated in space (white noise through a 3x3 binomial
    filter, renormalised), the same on R, G and B, with standard deviation ``sigma`` of full scale at
    mid-gray, half that in black and 1.5x in white."""
    out = to_unit(frames).copy()
    _, h, w, _ = frames.shape
    for t in range(len(frames)):
        n = rng.standard_normal((h, w)).astype(np.float32)
        p = np.pad(n, 1, mode="reflect")
        n = (p[:-2, 1:-1] + 2 * p[1:-1, 1:-1] + p[2:, 1:-1]) / 4
        p = np.pad(n, 1, mode="reflect")
        n = (p[1:-1, :-2] + 2 * p[1:-1, 1:-1] + p[1:-1, 2:]) / 4
        n /= n.std()
        lum = out[t] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        out[t] += (n * np.float32(sigma) * (0.5 + lum))[..., None]
    return quantize(out, frames.dtype)
