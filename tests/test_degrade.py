"""Degradation operators of the training recipes: each one measured back, on real images and frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restora.evaluation import cars_i420
from restora.metrics import psnr
from training import degrade


@pytest.fixture(scope="module")
def img(data: Path) -> np.ndarray:
    """A real 256x256 crop (BSD200 100075.png, 481x321) as (H, W, 3) uint8."""
    return np.asarray(Image.open(data / "images/train/BSD200/100075.png").convert("RGB"))[32:288, 100:356].copy()


@pytest.fixture(scope="module")
def cars(data: Path) -> np.ndarray:
    """First 10 frames of the cars clip (raw I420 320x240), luma replicated to RGB: (10, 240, 320, 3) uint8."""
    y = np.stack([planes[0] for planes in cars_i420(data)[:10]])
    return np.repeat(y[..., None], 3, axis=3)


@pytest.mark.parametrize("sigma", [5.0, 15.0])
def test_gaussian_noise_sigma_measured_back(sigma: float) -> None:
    flat = np.full((256, 256, 3), 128, np.uint8)
    noisy = degrade.add_noise(flat, sigma, np.random.default_rng(0))
    assert abs(float((noisy.astype(np.float64) - 128).std()) - sigma) < 0.03 * sigma + 0.3


def test_poisson_noise_grows_with_brightness_and_shrinks_with_peak() -> None:
    rng = np.random.default_rng(1)
    dark, bright = np.full((128, 128, 3), 40, np.uint8), np.full((128, 128, 3), 200, np.uint8)
    std = {(v, p): float(degrade.add_poisson_noise(im, p, rng).astype(np.float64).std())
           for v, im in ((40, dark), (200, bright)) for p in (50.0, 500.0)}  # fmt: skip
    assert std[(200, 50.0)] > std[(40, 50.0)] > std[(40, 500.0)]
    # theory: std = sqrt(v / 255 * peak) / peak * 255 (mid grey: no clipping at 0 or 255)
    mid = float(degrade.add_poisson_noise(np.full((256, 256, 3), 100, np.uint8), 50.0, rng).astype(np.float64).std())
    assert abs(mid - np.sqrt(100 / 255 * 50) / 50 * 255) < 0.5
    same = degrade.add_poisson_noise(bright, 50.0, np.random.default_rng(7))
    assert np.array_equal(same, degrade.add_poisson_noise(bright, 50.0, np.random.default_rng(7))), "seeded"


def test_kernels() -> None:
    iso = degrade.anisotropic_gaussian_kernel(2.0, 2.0, 0.3)
    assert iso.shape == (21, 21) and abs(float(iso.sum()) - 1) < 1e-5 and np.allclose(iso, iso.T, atol=1e-7)
    aniso = degrade.anisotropic_gaussian_kernel(4.0, 0.5, 0.0)  # long along x
    assert aniso[10, 14] > 10 * aniso[14, 10]
    motion = degrade.motion_kernel(9.0, np.pi / 2)  # vertical streak
    assert abs(float(motion.sum()) - 1) < 1e-5 and motion[:, 10].sum() > 0.9
    with pytest.raises(ValueError):
        degrade.anisotropic_gaussian_kernel(1.0, 1.0, 0.0, size=20)


def test_apply_kernel_blurs_and_keeps_flat_areas(img: np.ndarray) -> None:
    flat = np.full((40, 50, 3), 77, np.uint8)
    k = degrade.anisotropic_gaussian_kernel(1.5, 3.0, 0.7)
    assert np.array_equal(degrade.apply_kernel(flat, k), flat)
    delta = np.zeros((21, 21), np.float32)
    delta[10, 10] = 1
    assert np.array_equal(degrade.apply_kernel(img, delta), img), "identity kernel"
    weak, strong = (degrade.apply_kernel(img, degrade.anisotropic_gaussian_kernel(s, s, 0)) for s in (0.8, 2.5))
    assert psnr(img, weak, peak=255.0) > psnr(img, strong, peak=255.0)
    # the FFT convolution matches PIL's Gaussian blur closely (same sigma, different truncation)
    assert psnr(weak, degrade.gaussian_blur(img, 0.8), peak=255.0) > 38


@pytest.mark.parametrize("method", ["bicubic", "area", "bilinear"])
def test_resize_methods(img: np.ndarray, method: degrade.ResizeMethod) -> None:
    small = degrade.resize(img, 128, 96, method)
    assert small.shape == (96, 128, 3)
    flat = np.full((64, 64, 3), 200, np.uint8)
    assert np.array_equal(degrade.resize(flat, 32, 32, method), flat[:32, :32])


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_video_compression_crf_monotonic(cars: np.ndarray, codec: str) -> None:
    """Real encoder round trip: higher CRF, lower PSNR; shapes and frame count preserved."""
    scores = []
    for crf in (18, 30, 42):
        out = degrade.video_compress(cars, codec=codec, crf=crf, preset="veryfast")  # type: ignore[arg-type]
        assert out.shape == cars.shape and out.dtype == np.uint8
        scores.append(psnr(cars, out, peak=255.0))
    assert scores[0] > scores[1] + 2 > scores[2] + 4, scores
    assert scores[2] < 33  # CRF 42 is visibly degraded (blocking)


def test_video_compression_bitrate_and_odd_sizes(cars: np.ndarray) -> None:
    low = degrade.video_compress(cars, bitrate=100_000)
    high = degrade.video_compress(cars, bitrate=2_000_000)
    assert psnr(cars, high, peak=255.0) > psnr(cars, low, peak=255.0) + 3
    odd = degrade.video_compress(cars[:2, :101, :77], crf=20)
    assert odd.shape == (2, 101, 77, 3) and psnr(cars[:2, :101, :77], odd, peak=255.0) > 30


def test_second_order_degradation(img: np.ndarray) -> None:
    a = degrade.second_order_degradation(img, 4, np.random.default_rng(3))
    b = degrade.second_order_degradation(img, 4, np.random.default_rng(3))
    assert a.shape == (64, 64, 3) and np.array_equal(a, b), "seeded and reproducible"
    same_size = degrade.second_order_degradation(img, 1, np.random.default_rng(4), strength=0.5)
    assert same_size.shape == img.shape
    # on average it degrades more than a plain bicubic downscale does
    bic = degrade.downscale(img, 4)
    worse = [
        psnr(bic, degrade.second_order_degradation(img, 4, np.random.default_rng(s)), peak=255.0) for s in range(6)
    ]
    assert np.mean(worse) < 35


def test_flicker_uneven_terms_measured_back() -> None:
    """``flicker`` on flat mid-gray frames: without the new terms each frame is one gain and offset
    (R = G = B, the same across the frame, the draws of the original operator); with ``tilt`` the
    right edge's gain against the left's has the asked std, with ``color`` the channels' gains
    differ by the asked std, with ``vignette`` the corners move against the middle."""
    frames = np.full((400, 8, 16, 3), 128, np.uint8)
    plain = degrade.flicker(frames, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    a = (1 + 0.12 * rng.standard_normal(400).clip(-2, 2)).astype(np.float32)
    b = (0.04 * rng.standard_normal(400).clip(-2, 2)).astype(np.float32)
    expected = np.clip(np.round((128 / 255 * a + b) * 255), 0, 255)
    assert np.array_equal(plain[:, 0, 0, 0], expected) and (plain == plain[:, :1, :1, :1]).all()
    f = degrade.flicker(frames, np.random.default_rng(1), gain=0, offset=0, tilt=0.1).astype(np.float64) / 128
    # edges at x = -15/16 and 15/16: their difference is 2 * 15/16 * tx
    assert np.std((f[:, 4, -1, 0] - f[:, 4, 0, 0]) / (2 * 15 / 16)) == pytest.approx(0.1, rel=0.15)
    c = degrade.flicker(frames, np.random.default_rng(2), gain=0, offset=0, color=0.04).astype(np.float64) / 128
    assert np.std(c[:, 0, 0] - 1) == pytest.approx(0.04, rel=0.15) and (c == c[:, :1, :1]).all()
    v = degrade.flicker(frames, np.random.default_rng(3), gain=0, offset=0, vignette=0.2).astype(np.float64) / 128
    assert np.std(v[:, 0, 0, 0] - v[:, 4, 8, 0]) > 0.05 and (v[..., 0] == v[..., 1]).all()
