"""Motion between frames: measure a global translation and apply one; measure a local motion field
on top of it and compensate a neighbouring frame with it.

Shared by ``stabilize`` (the camera path, global only), and ``dust_scratch`` and ``degrain``
(bringing the neighbours of a frame onto it).

Global (:func:`measure_shift`): phase correlation, weighted towards low frequencies so that dust and
grain do not decide it, gives candidate whole-pixel shifts; the one that leaves the smallest
difference between the frames is taken, and the fraction comes from the cross-power spectrum's
phase slope, or, where a smaller second motion bends that, from the median of the slopes fitted tile
by tile. A Keys cubic resampler moves a frame by a sub-pixel amount.

Local (:func:`local_field`, :func:`compensated_to`): after the global shift, coarse to fine (on the
copy the global shift is measured on, block-averaged again by 4, 2 and 1), the frame is cut into
overlapping tiles of :data:`TILE` pixels (every :data:`TILE_STEP`), each tile's own shift is found
by phase correlation (the fraction from a parabola through the peak) and the shifts are
interpolated bilinearly between tile centres into a per-pixel field. A tile keeps its shift only
where the field lowers the tile's difference from the reference (3x3 means, each pixel's difference
capped at :data:`ERROR_CAP` so that dust cannot choose a shift) to below :data:`LOCAL_GAIN` of what
it was, and by at least :data:`LOCAL_MIN_GAIN` per pixel; elsewhere (flat areas, grain, nothing
moving) the coarser field stands. The compensated pixels are read bilinearly.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from restora.color import FloatArray
from restora.metrics import box_sum

MEASURE_WIDTH = 480  # frames are block-averaged to at most this width for motion measurement
SLOPE_BAND = 0.15  # cycles per pixel: the sub-pixel phase fit uses frequencies below this
PEAK_BAND = 0.05  # cycles per pixel: the phase correlation is weighted by a Gaussian of this width
PEAK_COUNT = 5  # the highest peaks of the correlation taken as candidate shifts
MIN_PSR = 15.0  # a peak this many robust standard deviations above the weighted surface is a match ...
MIN_PEAK = 0.06  # ... and so is one where plain phase correlation peaks this high
MAD_TO_STD = 1.4826  # the std of normal data per median absolute deviation
SLOPE_TRUST = 0.5  # pixels: a phase-slope shift this far from the differences' parabola is not trusted
MIN_OVERLAP = 0.25  # a candidate shift must leave this share of the frame overlapping
SLOPE_TILE = 64  # pixels: tiles (every half tile) whose own phase slopes give the dominant motion's fraction ...
MIN_SLOPE_TILES = 8  # ... as their median, when at least this many agree
SLOPE_FIT = 0.1  # rad^2: a tile whose phase departs from its own slope by more did not move in one piece
TILE_TRUST = 0.05  # pixels: the whole frame's slope stands unless the tiles' fraction differs by more
TILE = 32  # local motion: tile size (pixels) ...
TILE_STEP = 16  # ... and spacing of the tiles (half the size: tile_sums and _tile_spectra rely on it)
MIN_TILE_PEAK = 0.06  # a tile whose phase-correlation peak is lower gets no shift
LOCAL_REACH = 10  # the largest local shift (pixels, either axis) a tile may take
LOCAL_GAIN = 0.8  # a tile keeps its local shift where it leaves at most this share of the global difference
LOCAL_MIN_GAIN = 0.004  # ... and by at least this much per pixel on average (more than a dust spot can)
ERROR_CAP = 0.15  # differences compared per pixel are capped at this (of full scale): dust counts little
LEVELS = (4, 2, 1)  # local motion: the block sizes of the copies tiles are measured on, coarse to fine
ROTATION_PASSES = 2  # rotation: fits, each on what the turn found so far leaves
MIN_ROTATION_TILES = 12  # rotation: tiles that must agree for an angle to be measured
REWEIGHTS = 4  # rotation: iterations of the reweighted fit
TURN_TOL = 0.1  # rotation: pixels (measuring copy) within which a tile agrees with a turn or a shift
BISQUARE = 4.685  # Tukey's constant: a tile misfitting by this many robust stds gets no weight


def measure_factor(width: int) -> int:
    """The block size that brings a frame ``width`` pixels wide to at most :data:`MEASURE_WIDTH`."""
    return max(1, -(-width // MEASURE_WIDTH))


def block_mean(g: FloatArray, f: int) -> FloatArray:
    """``(H, W)`` -> ``(H // f, W // f)`` means of ``f x f`` blocks."""
    h, w = g.shape[0] // f * f, g.shape[1] // f * f
    out: FloatArray = g[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3), dtype=np.float32)
    return out


def mean3(g: FloatArray) -> npt.NDArray[np.float64]:
    """3x3 mean of an ``(H, W)`` plane (edges repeated), float64."""
    out: npt.NDArray[np.float64] = box_sum(g.astype(np.float64), 3) / 9.0
    return out


def _peaks(r: npt.NDArray[np.float64], count: int) -> list[tuple[int, int]]:
    """``(y, x)`` of the ``count`` highest local maxima (3 x 3, wrapping) of a correlation surface."""
    h, w = r.shape
    pad = np.pad(r, 1, mode="wrap")
    top = r.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(top, pad[dy : dy + h, dx : dx + w], out=top)
    ys, xs = np.nonzero(r >= top)
    order = np.argsort(r[ys, xs])[::-1][:count]
    return [(int(ys[i]), int(xs[i])) for i in order]


def _overlap_error(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating], dx: int, dy: int) -> float:
    """Mean of ``|b(p + d) - a(p)|`` capped at :data:`ERROR_CAP` over the part of ``a`` that ``b``
    still covers after the whole-pixel shift ``d``; infinite if that is under :data:`MIN_OVERLAP`."""
    h, w = a.shape
    if (h - abs(dy)) * (w - abs(dx)) < MIN_OVERLAP * h * w:
        return float("inf")
    sa = a[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    sb = b[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
    return float(np.minimum(np.abs(sb - sa), ERROR_CAP).mean())


def measure_shift(a: FloatArray, b: FloatArray) -> tuple[float, float] | None:
    """Global translation ``(dx, dy)`` in pixels of picture ``b`` relative to ``a`` (content at ``p``
    in ``a`` is at ``p + (dx, dy)`` in ``b``), both ``(H, W)`` float32; None when nothing matches
    reliably (a flat, faded or blurred frame, or unrelated pictures).

    Whole pixels: phase correlation (Hann-windowed), its cross-power spectrum weighted by a Gaussian
    of :data:`PEAK_BAND` cycles per pixel. Full whitening gives every frequency the same say, and at
    the high ones dust spots and grain outweigh the picture: on real footage with 15 dust spots a
    frame the true peak was often not even among the five highest. Of the :data:`PEAK_COUNT` highest
    peaks of that surface and of the plain one (whose peaks are sharp: two motions a few pixels apart
    merge into one broad peak between them in the weighted surface), those that are matches (standing
    :data:`MIN_PSR` robust standard deviations above the weighted surface, or reaching
    :data:`MIN_PEAK` in plain phase correlation) are candidates, and the one whose shift leaves the
    smallest difference between the frames (3x3 means, capped at :data:`ERROR_CAP` a pixel) is taken:
    two motions, a vehicle and the road under it, give two peaks, and the one that matches more of the
    picture wins.

    The fraction: weighted least-squares fits of the remaining phase slope of cross-power spectra over
    the low frequencies (below :data:`SLOPE_BAND` cycles per pixel, weighted by magnitude), where a
    parabola through the peak is biased towards whole pixels. One fit over the whole frame is bent by
    a second motion (a piece of 8 % of the frame moving by (6, -4) px over a still picture put the
    shift at (0.7, -0.6) px): each tile gets its own fit, and the median over the tiles that moved in
    one piece with the chosen whole pixel is the dominant motion's (:func:`_tile_fraction`). Where it
    differs from the whole frame's fit by more than :data:`TILE_TRUST`, it is taken; otherwise the
    whole frame's fit, which is the more precise on a picture that moves in one piece (about 0.005
    against 0.02 px, the tiles' windows biasing each of their fits). Where the fraction disagrees by more than
    :data:`SLOPE_TRUST` with a parabola through the frames' differences around the best whole pixel
    (a broad peak on an axis with little structure is pulled towards 0 by the window, and the slope
    anchored there is wrong), the parabola is taken.
    """
    h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    cross = np.fft.rfft2((b - b.mean()) * win) * np.conj(np.fft.rfft2((a - a.mean()) * win))
    mag = np.abs(cross)
    u, v = np.fft.rfftfreq(w)[None, :], np.fft.fftfreq(h)[:, None]
    band = np.exp(-0.5 * (u * u + v * v) / PEAK_BAND**2)
    white = cross / np.maximum(mag, 1e-12)
    r, plain = np.fft.irfft2(band * white, s=(h, w)), np.fft.irfft2(white, s=(h, w))
    if not np.any(r):
        return None
    # candidates: the weighted surface's peaks (not dust's) and the plain one's (sharp: two motions a
    # few pixels apart do not merge into one peak between them)
    mid = float(np.median(r))
    noise = max(MAD_TO_STD * float(np.median(np.abs(r - mid))), 1e-12)

    def match(y: int, x: int) -> bool:  # a peak standing well above the weighted surface, or a plain one
        around = np.ix_([(y + d) % h for d in (-1, 0, 1)], [(x + d) % w for d in (-1, 0, 1)])
        return bool((r[around].max() - mid) / noise >= MIN_PSR or plain[around].max() >= MIN_PEAK)

    peaks = [p for p in dict.fromkeys(_peaks(r, PEAK_COUNT) + _peaks(plain, PEAK_COUNT)) if match(*p)]
    if not peaks:
        return None
    whole = [(x - w if x > w / 2 else x, y - h if y > h / 2 else y) for y, x in peaks]
    sa, sb = mean3(a), mean3(b)  # grain averaged down
    ix, iy = whole[int(np.argmin([_overlap_error(sa, sb, dx, dy) for dx, dy in whole]))]
    fx, fy = _slope(cross, w, ix, iy)
    dominant = _tile_fraction(a, b, ix, iy)
    if dominant is not None and max(abs(fx + dominant[0]), abs(fy + dominant[1])) > TILE_TRUST:
        fx, fy = -dominant[0], -dominant[1]  # a second motion bent the whole frame's slope
    # Check the slope against the frames' differences: the whole pixel that matches best next to the
    # peak's (a broad peak, on an axis with little structure, is pulled towards 0 by the window) and a
    # parabola through the differences around it (biased towards whole pixels, but not fooled). Where
    # they disagree by more than SLOPE_TRUST, the parabola is taken.
    errors: dict[tuple[int, int], float] = {}

    def err(dx: int, dy: int) -> float:
        if (dx, dy) not in errors:
            errors[dx, dy] = _overlap_error(sa, sb, dx, dy)
        return errors[dx, dy]

    jx, jy = min(((ix + ox, iy + oy) for oy in (-1, 0, 1) for ox in (-1, 0, 1)), key=lambda d: err(*d))
    px = jx + _vertex(err(jx - 1, jy), err(jx, jy), err(jx + 1, jy))
    py = jy + _vertex(err(jx, jy - 1), err(jx, jy), err(jx, jy + 1))
    x, y = ix - fx, iy - fy
    return (x if abs(x - px) <= SLOPE_TRUST else px), (y if abs(y - py) <= SLOPE_TRUST else py)


def _slope(cross: npt.NDArray[np.complexfloating], w: int, ix: int, iy: int) -> tuple[float, float]:
    """What remains of the shift beyond the whole pixel ``(ix, iy)``, negated (``shift = i - f``), from
    the phase slope of the ``(H, W // 2 + 1)`` cross-power spectrum of pictures ``w`` wide over the
    frequencies below :data:`SLOPE_BAND` (weighted least squares, weights the square root of the
    magnitude); ``(0, 0)`` with fewer than 3 usable frequencies."""
    u, v = np.fft.rfftfreq(w)[None, :], np.fft.fftfreq(cross.shape[0])[:, None]
    mag = np.abs(cross)
    rest = cross * np.exp(2j * np.pi * (u * ix + v * iy))  # phase left: -2 pi (u fx + v fy)
    sel = (u < SLOPE_BAND) & (np.abs(v) < SLOPE_BAND) & (mag > 0)
    sw = np.sqrt(mag[sel])
    if len(sw) < 3:
        return 0.0, 0.0
    design = np.stack([np.broadcast_to(u, sel.shape)[sel], np.broadcast_to(v, sel.shape)[sel]], 1) * (2 * np.pi)
    (fx, fy), *_ = np.linalg.lstsq(design * sw[:, None], np.angle(rest[sel]) * sw, rcond=None)
    return float(fx), float(fy)


def _tile_fraction(a: FloatArray, b: FloatArray, ix: int, iy: int) -> tuple[float, float] | None:
    """The dominant motion's shift beyond the whole pixel ``(ix, iy)`` of ``b`` relative to ``a``
    (both ``(H, W)``), in pixels, each within (-1, 1); None where fewer than :data:`MIN_SLOPE_TILES`
    tiles tell it.

    On the part of the frames that overlap after the whole-pixel shift, every tile of
    :data:`SLOPE_TILE` pixels (Hann-windowed, every half tile) gets its own phase-slope fit as
    :func:`_slope` makes over the frame. The tiles that count: those whose phase follows their slope
    (weighted mean square departure under :data:`SLOPE_FIT` rad^2: not two motions, not flat), that
    carry at least half the median tile's spectral weight, and whose shift is under a pixel from
    ``(ix, iy)``; the median of theirs is robust to a second motion that covers fewer than half of
    them. A tile's window biases its fit towards 0 by a few hundredths of the fraction: ``b`` is
    moved back by the median (Keys cubic) and what the same tiles still measure is added."""
    h, w = a.shape
    sa = a[max(0, -iy) : h - max(0, iy), max(0, -ix) : w - max(0, ix)]
    sb = b[max(0, iy) : h - max(0, -iy), max(0, ix) : w - max(0, -ix)]
    if sa.shape[0] < SLOPE_TILE or sa.shape[1] < SLOPE_TILE:
        return None
    rx, ry, ok = _tile_slopes(sa, sb)
    if ok.sum() < MIN_SLOPE_TILES:
        return None
    mx, my = float(np.median(rx[ok])), float(np.median(ry[ok]))
    back = shift_image(sb[..., None], -mx, -my)[..., 0]
    ex, ey, still_ok = _tile_slopes(sa, back)
    keep = ok & still_ok
    if keep.sum() < MIN_SLOPE_TILES:
        return mx, my
    return mx + float(np.median(ex[keep])), my + float(np.median(ey[keep]))


def _tile_slopes(
    sa: FloatArray, sb: FloatArray
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Per tile (:func:`_tile_fraction`) of two aligned ``(H, W)`` planes: the shift ``(rx, ry)`` of
    ``sb`` relative to ``sa`` from the tile's phase slope, and whether the tile counts."""
    n = SLOPE_TILE
    u, v = np.fft.rfftfreq(n)[None, :], np.fft.fftfreq(n)[:, None]
    sel = (u < SLOPE_BAND) & (np.abs(v) < SLOPE_BAND)
    sel[0, 0] = False
    uu, vv = (np.broadcast_to(f, sel.shape)[sel] * (2 * np.pi) for f in (u, v))
    c = (_tile_spectra(sb, n) * np.conj(_tile_spectra(sa, n)))[..., sel]  # (ny, nx, frequencies)
    wt, phase = np.sqrt(np.abs(c)), np.angle(c)
    # weighted least squares per tile: phase = -(uu rx + vv ry), by its 2 x 2 normal equations
    suu, suv, svv = (wt * uu * uu).sum(-1), (wt * uu * vv).sum(-1), (wt * vv * vv).sum(-1)
    sup, svp = (wt * uu * phase).sum(-1), (wt * vv * phase).sum(-1)
    det = np.where(np.abs(suu * svv - suv * suv) > 1e-12, suu * svv - suv * suv, np.inf)
    rx, ry = -(svv * sup - suv * svp) / det, -(suu * svp - suv * sup) / det
    misfit = (wt * (phase + rx[..., None] * uu + ry[..., None] * vv) ** 2).sum(-1) / np.maximum(wt.sum(-1), 1e-12)
    strength = wt.sum(-1)
    ok = (misfit < SLOPE_FIT) & (strength >= 0.5 * np.median(strength)) & (np.abs(rx) < 1) & (np.abs(ry) < 1)
    return rx, ry, ok


def _tile_spectra(g: FloatArray, n: int) -> npt.NDArray[np.complexfloating]:
    """Spectra of the ``n x n`` tiles of an ``(H, W)`` plane every ``n // 2`` pixels, each less its
    mean and Hann-windowed: ``(ny, nx, n, n // 2 + 1)`` (``rfft2``)."""
    win = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    t = np.lib.stride_tricks.sliding_window_view(g, (n, n))[:: n // 2, :: n // 2]
    out: npt.NDArray[np.complexfloating] = np.fft.rfft2((t - t.mean(axis=(-2, -1), keepdims=True)) * win)
    return out


def _vertex(lo: float, mid: float, hi: float) -> float:
    """Offset in [-0.5, 0.5] of the minimum of the parabola through ``(-1, lo), (0, mid), (1, hi)``."""
    den = lo - 2 * mid + hi
    return float(np.clip(0.5 * (lo - hi) / den, -0.5, 0.5)) if np.isfinite(den) and den > 0 else 0.0


def frame_shift(a: FloatArray, b: FloatArray) -> tuple[float, float] | None:
    """:func:`measure_shift` of two full-size ``(H, W)`` gray planes, measured on copies reduced to
    at most :data:`MEASURE_WIDTH` pixels wide, in full-size pixels."""
    f = measure_factor(a.shape[1])
    s = measure_shift(block_mean(a, f), block_mean(b, f)) if f > 1 else measure_shift(a, b)
    return None if s is None else (s[0] * f, s[1] * f)


def aligned_to(frame: FloatArray, ref_gray: FloatArray) -> FloatArray:
    """``(H, W, 3)`` float32 RGB ``frame`` moved onto the picture whose gray level is ``ref_gray``
    (``(H, W)``) by the global shift between them (:func:`frame_shift`); unchanged when the shift is
    under 0.05 pixel or cannot be measured."""
    from restora.stages.temporal import GRAY_WEIGHTS

    shift = frame_shift(frame @ GRAY_WEIGHTS, ref_gray)
    dx, dy = shift if shift is not None else (0.0, 0.0)
    return shift_image(frame, dx, dy) if abs(dx) >= 0.05 or abs(dy) >= 0.05 else frame


def tile_shifts(ref: FloatArray, mov: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Shift of every tile of ``mov`` relative to ``ref`` (both ``(H, W)`` float32, ``H, W >= TILE``):
    ``(dx, dy)``, each ``(ny, nx)`` float32 for the tiles at ``TILE_STEP * (i, j)``, phase correlation
    with a parabola through the peak (content at ``p`` in ``ref`` is at ``p + (dx, dy)`` in ``mov``);
    0 where the peak is beyond :data:`LOCAL_REACH` or weaker than :data:`MIN_TILE_PEAK`."""
    dx, dy, ok = _tile_peaks(ref, mov)
    return np.where(ok, dx, 0).astype(np.float32), np.where(ok, dy, 0).astype(np.float32)


def _tile_peaks(ref: FloatArray, mov: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """:func:`tile_shifts` before the tiles without a match are set to 0: ``(dx, dy, ok)``."""
    cross = _tile_spectra(mov, TILE) * np.conj(_tile_spectra(ref, TILE))
    r = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-12), s=(TILE, TILE)).astype(np.float32)
    ny, nx = r.shape[:2]
    flat = r.reshape(ny, nx, -1)
    peak = flat.argmax(axis=-1)
    py, px = peak // TILE, peak % TILE
    iy, ix = np.ix_(np.arange(ny), np.arange(nx))

    def frac(lo: FloatArray, mid: FloatArray, hi: FloatArray) -> FloatArray:
        den = lo - 2 * mid + hi
        out: FloatArray = np.where(den < 0, 0.5 * (lo - hi) / np.where(den < 0, den, -1.0), 0.0)
        return np.clip(out, -0.5, 0.5)

    top = r[iy, ix, py, px]
    fx = frac(r[iy, ix, py, (px - 1) % TILE], top, r[iy, ix, py, (px + 1) % TILE])
    fy = frac(r[iy, ix, (py - 1) % TILE, px], top, r[iy, ix, (py + 1) % TILE, px])
    dx = np.where(px > TILE // 2, px - TILE, px) + fx
    dy = np.where(py > TILE // 2, py - TILE, py) + fy
    ok = (top >= MIN_TILE_PEAK) & (np.abs(dx) <= LOCAL_REACH) & (np.abs(dy) <= LOCAL_REACH)
    return dx.astype(np.float32), dy.astype(np.float32), ok


def _spread(n: int, centres: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """``(n, len(centres))`` weights interpolating values given at the increasing pixel positions
    ``centres`` linearly onto pixels ``0 .. n-1`` (held constant beyond the first and last)."""
    count = len(centres)
    out = np.zeros((n, count), dtype=np.float32)
    if count == 1:
        out[:, 0] = 1
        return out
    pos = np.clip(np.arange(n, dtype=np.float64), centres[0], centres[-1])
    i = np.clip(np.searchsorted(centres, pos, side="right") - 1, 0, count - 2)
    t = (pos - centres[i]) / (centres[i + 1] - centres[i])
    out[np.arange(n), i] = 1 - t
    out[np.arange(n), i + 1] = t
    return out


def _resize(v: FloatArray, shape: tuple[int, int], step: int, first: float) -> FloatArray:
    """``(ny, nx)`` values given every ``step`` pixels from ``first`` on -> ``(H, W)``, bilinear."""
    ys, xs = (np.arange(c, dtype=np.float64) * step + first for c in v.shape)
    out = _spread(shape[0], ys) @ v @ _spread(shape[1], xs).T
    return out.astype(np.float32, copy=False)


def dense_field(v: FloatArray, shape: tuple[int, int], f: int) -> FloatArray:
    """``(ny, nx)`` values of the tiles measured at block size ``f`` -> ``(H, W)`` per pixel, bilinear
    between tile centres."""
    return _resize(v, shape, TILE_STEP * f, (TILE * f - 1) / 2)


def sample(img: FloatArray, dx: FloatArray, dy: FloatArray) -> FloatArray:
    """``img`` (``(H, W)`` or ``(H, W, C)`` float32) read at ``p + (dx, dy)`` (bilinear, clamped to
    the frame) where the ``(H, W)`` field moves by at least 0.05 pixel; the other pixels unchanged."""
    h, w = dx.shape
    sel = np.flatnonzero((np.abs(dx) >= 0.05) | (np.abs(dy) >= 0.05))
    out = img.copy()
    if sel.size == 0 or h < 2 or w < 2:
        return out
    ys, xs = np.divmod(sel, w)
    x = np.clip(xs.astype(np.float32) + dx.ravel()[sel], 0, w - 1)
    y = np.clip(ys.astype(np.float32) + dy.ravel()[sel], 0, h - 1)
    x0, y0 = np.minimum(x.astype(np.int64), w - 2), np.minimum(y.astype(np.int64), h - 2)
    tx, ty = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    if img.ndim == 3:
        tx, ty = tx[:, None], ty[:, None]
    flat = img.reshape(h * w, *img.shape[2:])
    i00 = y0 * w + x0
    top = np.take(flat, i00, axis=0) * (1 - tx) + np.take(flat, i00 + 1, axis=0) * tx
    bottom = np.take(flat, i00 + w, axis=0) * (1 - tx) + np.take(flat, i00 + w + 1, axis=0) * tx
    out.reshape(h * w, *img.shape[2:])[sel] = top * (1 - ty) + bottom * ty
    return out


def _clipped(d: FloatArray) -> FloatArray:
    """``|d|`` capped at :data:`ERROR_CAP`: what a pixel can weigh in comparing two fields, so that
    dust or a blip on the reference (wrong under any field) cannot choose one."""
    out: FloatArray = np.minimum(np.abs(d), ERROR_CAP)
    return out


def local_field(ref: FloatArray, mov: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-pixel motion ``(dx, dy)`` (each ``(H, W)`` float32) of ``mov`` relative to ``ref`` (both
    ``(H, W)`` float32 gray), measured on copies block-averaged by ``f`` (to at most
    :data:`MEASURE_WIDTH` wide, as for the global shift; 3x3 means, so grain does not decide): coarse
    to fine, tiles on that copy block-averaged again by each of :data:`LEVELS`, each level measuring
    what the field so far leaves and keeping a tile's correction only where it lowers the tile's capped
    difference from ``ref`` to below :data:`LOCAL_GAIN` of what it was, and by :data:`LOCAL_MIN_GAIN`
    a pixel."""
    h, w = ref.shape
    f = measure_factor(w)
    sref, smov = (block_mean(ref, f), block_mean(mov, f)) if f > 1 else (ref, mov)
    # grain and noise averaged down before matching
    sref, smov = mean3(sref).astype(np.float32), mean3(smov).astype(np.float32)
    fx, fy = np.zeros_like(sref), np.zeros_like(sref)
    cur = smov
    for k in LEVELS:
        if sref.shape[0] // k < TILE or sref.shape[1] // k < TILE:
            continue
        vx, vy = tile_shifts(block_mean(sref, k), block_mean(cur, k)) if k > 1 else tile_shifts(sref, cur)
        if not (vx.any() or vy.any()):
            continue
        tx, ty = fx + dense_field(vx * k, sref.shape, k), fy + dense_field(vy * k, sref.shape, k)
        trial = sample(smov, tx, ty)
        before, after = tile_sums(_clipped(cur - sref), k), tile_sums(_clipped(trial - sref), k)
        better = (after < LOCAL_GAIN * before) & (before - after > LOCAL_MIN_GAIN * (TILE * k) ** 2)
        if not better.any():
            continue
        fx = fx + dense_field(np.where(better, vx * k, 0), sref.shape, k)
        fy = fy + dense_field(np.where(better, vy * k, 0), sref.shape, k)
        cur = sample(smov, fx, fy)
    if f == 1:
        return fx, fy
    # the field of f x f block means, at their centres, to every pixel, in full-size pixels
    return _resize(fx * f, (h, w), f, (f - 1) / 2), _resize(fy * f, (h, w), f, (f - 1) / 2)


def compensated_to(frame: FloatArray, ref_gray: FloatArray) -> FloatArray:
    """``(H, W, 3)`` float32 RGB ``frame`` brought onto the picture whose gray level is ``ref_gray``
    (``(H, W)``): the global shift (:func:`aligned_to`), then the local motion field
    (:func:`local_field`) where it matches better (see the module docstring)."""
    from restora.stages.temporal import GRAY_WEIGHTS

    moved = aligned_to(frame, ref_gray)
    fx, fy = local_field(ref_gray, moved @ GRAY_WEIGHTS)
    return sample(moved, fx, fy)


def tile_sums(e: FloatArray, f: int) -> npt.NDArray[np.float64]:
    """Sums of the ``(H, W)`` plane ``e`` over the tiles of :func:`tile_shifts` measured at block size
    ``f`` (tiles of ``TILE * f`` pixels every ``TILE_STEP * f``): ``(ny, nx)``."""
    step = TILE_STEP * f  # a tile is 2 x 2 blocks of this size (TILE == 2 * TILE_STEP)
    ny, nx = (e.shape[0] // f - TILE) // TILE_STEP + 1, (e.shape[1] // f - TILE) // TILE_STEP + 1
    blocks = (
        e[: (ny + 1) * step, : (nx + 1) * step].reshape(ny + 1, step, nx + 1, step).sum(axis=(1, 3), dtype=np.float64)
    )
    out: npt.NDArray[np.float64] = blocks[:-1, :-1] + blocks[1:, :-1] + blocks[:-1, 1:] + blocks[1:, 1:]
    return out


def _keys(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Keys cubic convolution kernel (a = -0.5) at distances ``x``."""
    x = np.abs(x)
    return np.where(x <= 1, (1.5 * x - 2.5) * x * x + 1, np.where(x < 2, ((-0.5 * x + 2.5) * x - 4) * x + 2, 0.0))


def _shift_axis(img: FloatArray, d: float, axis: int) -> FloatArray:
    """``img`` moved by ``d`` pixels along ``axis`` (output ``p`` reads input ``p - d``), cubic, edges repeated.

    The fraction of the move is the same for every pixel, so the four taps are four slices of the
    edge-padded image (no gathers)."""
    n = img.shape[axis]
    d = float(np.clip(d, -(n + 3), n + 3))  # beyond the frame every tap reads the edge anyway
    b0 = int(np.floor(-d))  # output p reads p + b0 + frac
    wts = _keys(np.asarray(-d - b0 - np.arange(-1, 3), dtype=np.float64))
    pad_lo, pad_hi = max(0, 1 - b0), max(0, b0 + 2)
    widths = [(pad_lo, pad_hi) if ax == axis else (0, 0) for ax in range(img.ndim)]
    padded = np.pad(img, widths, mode="edge")
    out = np.zeros_like(img)
    for k, wk in enumerate(wts):
        start = b0 - 1 + k + pad_lo
        view = padded[(slice(None),) * axis + (slice(start, start + n),)]
        out += np.float32(wk) * view
    return out


def shift_image(img: FloatArray, dx: float, dy: float) -> FloatArray:
    """``(H, W, C)`` float32 moved by ``(dx, dy)`` pixels (content at ``p`` goes to ``p + (dx, dy)``),
    Keys cubic, the uncovered edge strip repeating the edge; not clipped."""
    out = img
    if abs(dx) >= 1e-3:
        out = _shift_axis(out, dx, axis=1)
    if abs(dy) >= 1e-3:
        out = _shift_axis(out, dy, axis=0)
    return out


def _shift_rows(img: FloatArray, d: npt.NDArray[np.float64]) -> FloatArray:
    """Each row ``y`` of ``(H, W, C)`` float32 ``img`` moved along x by its own ``d[y]`` pixels (output
    ``x`` reads input ``x - d[y]``), Keys cubic, the uncovered ends repeating the edge: what
    :func:`_shift_axis` does to the whole image, row by row. Rows whose moves share the whole-pixel
    part are done together (a shear's moves change slowly down the frame: a few runs of rows), each
    row with its own four weights."""
    w = img.shape[1]
    d = np.clip(np.asarray(d, dtype=np.float64), -(w + 3), w + 3)
    b0 = np.floor(-d).astype(np.int64)  # output x reads x + b0 + frac
    wts = _keys((-d - b0)[:, None] - np.arange(-1, 3)[None, :]).astype(np.float32)  # (H, 4)
    pad_lo, pad_hi = max(0, 1 - int(b0.min())), max(0, int(b0.max()) + 2)
    padded = np.pad(img, ((0, 0), (pad_lo, pad_hi), (0, 0)), mode="edge")
    out = np.zeros_like(img)
    edges = [0, *(np.flatnonzero(np.diff(b0)) + 1).tolist(), len(b0)]
    for r0, r1 in itertools.pairwise(edges):
        for k in range(4):
            start = int(b0[r0]) - 1 + k + pad_lo
            out[r0:r1] += wts[r0:r1, k, None, None] * padded[r0:r1, start : start + w]
    return out


def rotate_image(img: FloatArray, angle: float) -> FloatArray:
    """``(H, W, C)`` float32 turned by ``angle`` radians about its centre (content at ``p`` goes to
    ``c + R (p - c)``, ``R = [[cos, -sin], [sin, cos]]`` in pixel coordinates, x right, y down: a
    positive angle turns the picture clockwise on screen), as three shears (Paeth: along x by
    ``-tan(angle / 2) y``, along y by ``sin(angle) x``, along x again), each line moved by the Keys
    cubic; the uncovered corners repeat the edge pixels; not clipped."""
    h, w = img.shape[:2]
    t, s = np.tan(angle / 2), np.sin(angle)
    ys, xs = np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2
    out = _shift_rows(img, -t * ys)
    out = np.ascontiguousarray(_shift_rows(np.ascontiguousarray(out.swapaxes(0, 1)), s * xs).swapaxes(0, 1))
    return _shift_rows(out, -t * ys)


def _centres(n: int, size: int, step: int) -> npt.NDArray[np.float64]:
    """Centres, relative to the middle of ``n`` pixels, of the tiles of ``size`` every ``step``."""
    return np.arange((n - size) // step + 1, dtype=np.float64) * step + ((size - 1) / 2 - (n - 1) / 2)


def _fit_turn(
    xs: npt.NDArray[np.float64],
    ys: npt.NDArray[np.float64],
    rx: npt.NDArray[np.floating],
    ry: npt.NDArray[np.floating],
    ok: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float64] | None:
    """``(dx, dy, scale - 1, angle)`` of a similarity about the centre fitted to the ``(ny, nx)`` tile
    shifts ``rx``, ``ry`` at centres ``xs`` ``(nx,)``, ``ys`` ``(ny,)`` (a turn moves a tile at ``(x, y)``
    by ``angle * (-y, x)``), counting the tiles ``ok``; least squares reweighted by Tukey's bisquare
    of each tile's misfit, so that a second motion drops out. None with fewer than
    :data:`MIN_ROTATION_TILES` tiles, or too little spread of them to tell a turn (a turn moves a
    row of tiles across, so one direction of spread is enough)."""
    x, y = (v[ok] for v in np.meshgrid(xs, ys))
    rx, ry = rx[ok].astype(np.float64), ry[ok].astype(np.float64)
    if len(x) < MIN_ROTATION_TILES or max(np.ptp(x), np.ptp(y)) < SLOPE_TILE:
        return None
    zero, one = np.zeros_like(x), np.ones_like(x)
    design = np.concatenate([np.stack([one, zero, x, -y], 1), np.stack([zero, one, y, x], 1)])  # x rows, y rows
    obs = np.concatenate([rx, ry])
    wts = np.ones(len(x))
    coef: npt.NDArray[np.float64] = np.zeros(4)
    for _ in range(REWEIGHTS):
        sw = np.sqrt(np.concatenate([wts, wts]))
        coef = np.linalg.lstsq(design * sw[:, None], obs * sw, rcond=None)[0]
        res = np.hypot(*(design @ coef - obs).reshape(2, -1))
        scale = max(MAD_TO_STD * float(np.median(res)), 0.01)
        wts = np.clip(1 - (res / (BISQUARE * scale)) ** 2, 0, None) ** 2
        if (wts > 0).sum() < MIN_ROTATION_TILES:
            return None
    return coef


def measure_turn(a: FloatArray, b: FloatArray, shift: tuple[float, float]) -> tuple[float, float, float] | None:
    """``(dx, dy, angle)`` of picture ``b`` relative to ``a``: the shift at the centre in pixels and the
    turn about it in radians (as :func:`rotate_image` turns), both ``(H, W)`` float32 gray (the
    measuring copies), starting from their global ``shift`` (:func:`measure_shift`); None where too
    few tiles tell the turn.

    A turn about the centre moves a tile at ``(x, y)`` by ``angle * (-y, x)``; the angle, a common
    shift and a change of scale are fitted to tiles' shifts (:func:`_fit_turn`). First on whole-pixel
    peaks (phase correlation of :data:`TILE` pixel tiles, up to :data:`LOCAL_REACH` pixels: a turn of
    a few degrees), then :data:`ROTATION_PASSES` times on what the turn and shift found so far leave,
    ``b`` moved and turned back by them: tiles of :data:`SLOPE_TILE` pixels of the part both cover,
    each with its own sub-pixel shift from its phase slope (:func:`_tile_slopes`, the tiles that moved
    in one piece within a pixel); a frame too small for :data:`MIN_ROTATION_TILES` of them (QCIF) gets
    no turn. The turn is dropped (None) where fewer of the last pass's tiles agree with it (within
    :data:`TURN_TOL`) than with a common shift alone: tiles of two motions (half the picture still,
    half moving) can fit a turn that is not there."""
    h, w = a.shape
    dx, dy = shift
    back = shift_image(b[..., None], -dx, -dy)[..., 0]
    px, py, ok = _tile_peaks(a, back)
    coef = _fit_turn(_centres(w, TILE, TILE_STEP), _centres(h, TILE, TILE_STEP), px, py, ok)
    if coef is None:
        return None
    dx, dy, angle = dx + coef[0], dy + coef[1], float(coef[3])
    for _ in range(ROTATION_PASSES):
        back = rotate_image(shift_image(b[..., None], -dx, -dy), -angle)[..., 0]
        # leave out the strips the moves filled with repeated edge pixels
        m = int(np.ceil(max(abs(dx), abs(dy)) + abs(angle) * max(h, w) / 2)) + 2
        sa, sb = a[m : h - m, m : w - m], back[m : h - m, m : w - m]
        if min(sa.shape) < SLOPE_TILE:
            return None
        rx, ry, ok = _tile_slopes(sa, sb)
        xs, ys = _centres(sa.shape[1], SLOPE_TILE, SLOPE_TILE // 2), _centres(sa.shape[0], SLOPE_TILE, SLOPE_TILE // 2)
        coef = _fit_turn(xs, ys, rx, ry, ok)
        if coef is None:  # the tiles did not come within a pixel, or a small frame has too few
            return None
        dx, dy, angle = dx + coef[0], dy + coef[1], angle + float(coef[3])
    # Tiles of two motions (the left half of the picture still, the right half moving) can fit a turn
    # that is not there. Kept only where more tiles agree with it (within TURN_TOL of the fit) than
    # with a shift alone: their shifts with the turn put back, less their median.
    x, y = (v[ok] for v in np.meshgrid(xs, ys))
    ex = rx[ok] - (coef[0] + coef[2] * x - coef[3] * y)
    ey = ry[ok] - (coef[1] + coef[2] * y + coef[3] * x)
    vx, vy = rx[ok] - angle * y, ry[ok] + angle * x
    with_turn = int((np.hypot(ex, ey) < TURN_TOL).sum())  # as many as with a shift: a turn of about 0
    shift_only = int((np.hypot(vx - np.median(vx), vy - np.median(vy)) < TURN_TOL).sum())
    return (dx, dy, angle) if with_turn >= shift_only else None
