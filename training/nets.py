"""Network definitions trained by the recipes in this folder and exported to ONNX.

All networks take and return NCHW float32 tensors in [0, 1]; nothing here reads files.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("prelu", "relu", "lrelu")  # LumaSR's activations (see its docstring)
LEAKY_SLOPE = 0.2  # negative slope of the "lrelu" activation


class LumaSR(nn.Module):
    """ESPCN-style luma super-resolution with a global bicubic skip (residual learning, as VDSR).

    The body runs at low resolution (cheap), its last convolution predicts ``scale**2`` residual
    sub-pixel planes, and a pixel shuffle arranges them at high resolution added to a bicubic
    upsampling of the input. The network learns only the detail bicubic misses, which makes it
    train quickly on a CPU.

    The bicubic skip is computed in the sub-pixel domain too: :class:`BicubicPhases` (a fixed 5x5
    convolution giving the ``scale**2`` bicubic phases, exactly ``F.interpolate(mode="bicubic")``)
    is added to the body's planes before the one pixel shuffle. Nothing but that shuffle runs at
    high resolution, and the exported graph has no ``Resize`` (ONNX Runtime's bicubic ``Resize`` took
    56 % of the x4 model's CPU time and 85 % of its INT8 variant's).

    Input ``(N, 1, h, w)`` float32 Y in [0, 1]; output ``(N, 1, h*scale, w*scale)`` float32
    (not clipped; callers clip).

    ``frames > 1`` (odd) makes it a multi-frame video model (early fusion, as VESPCN's): the input
    is ``(N, frames, h, w)``, consecutive frames' luma oldest first, the first convolution sees all
    of them, and the output is the middle frame with the bicubic skip taken from that frame. No
    explicit motion compensation: only motions within the body's receptive field
    (``2 * (blocks + 2) + 1`` LR pixels) can be used.

    ``act="relu"`` is the INT8-friendly variant: ONNX Runtime fuses Conv+ReLU into one quantized
    convolution, so the body stays in int8 between layers; PReLU (the default, slightly better in
    float) forces a dequantize/quantize pair around every activation. ``act="lrelu"`` (LeakyReLU,
    slope :data:`LEAKY_SLOPE`) is the fast-float variant: ONNX Runtime's CPU provider fuses
    Conv+LeakyRelu (and Conv+Relu) into one kernel in its blocked layout, whereas a per-channel PReLU
    runs as a separate pass over every activation map, with layout reorders around it (26 % of the
    48-channel x2 model's time at 720p on an AVX2 CPU, ``benchmarks.profile_ops``).
    """

    def __init__(self, scale: int, channels: int = 32, blocks: int = 5, act: str = "prelu", frames: int = 1) -> None:
        super().__init__()
        self.scale, self.frames = scale, frames
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, not {act!r}")
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be odd, not {frames}")

        def activation() -> nn.Module:
            if act == "prelu":
                return nn.PReLU(channels)
            return nn.LeakyReLU(LEAKY_SLOPE) if act == "lrelu" else nn.ReLU()

        layers: list[nn.Module] = [nn.Conv2d(frames, channels, 3, padding=1), activation()]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), activation()]
        last = nn.Conv2d(channels, scale * scale, 3, padding=1)
        # Start as exact bicubic: the residual branch's last layer is zero-initialised.
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last)  # (N, frames, h, w) -> (N, scale**2, h, w) residual planes
        self.bicubic = BicubicPhases(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = x if self.frames == 1 else x[:, self.frames // 2 : self.frames // 2 + 1]
        return F.pixel_shuffle(self.body(x) + self.bicubic(mid), self.scale)


def bicubic_taps(scale: int, a: float = -0.75) -> torch.Tensor:
    """``(scale, 5)`` float64 1-D bicubic weights (Keys kernel, ``a = -0.75`` as PyTorch and ONNX
    Runtime) of output phase ``p`` over input pixels ``i-2 .. i+2``, for half-pixel centres: output
    ``scale*i + p`` samples the input at ``i + (p + 0.5) / scale - 0.5``."""

    def keys(t: float) -> float:
        t = abs(t)
        if t <= 1:
            return (a + 2) * t**3 - (a + 3) * t**2 + 1
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0.0

    return torch.tensor(
        [[keys((p + 0.5) / scale - 0.5 - k) for k in range(-2, 3)] for p in range(scale)], dtype=torch.float64
    )


class BicubicPhases(nn.Module):
    """Bicubic upsampling by an integer ``scale`` expressed in the sub-pixel domain.

    ``(N, 1, h, w)`` -> ``(N, scale**2, h, w)``: channel ``py*scale + px`` is the bicubic sample of
    output pixel ``(scale*i + py, scale*j + px)``, so ``F.pixel_shuffle`` of it equals
    ``F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)`` (edge-clamped
    borders via replicate padding). A fixed 5x5 convolution, not trained (a buffer, not saved in
    state dicts).
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        taps = bicubic_taps(scale)
        k = torch.einsum("ai,bj->abij", taps, taps).reshape(scale * scale, 1, 5, 5)
        self.register_buffer("weight", k.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Replicate padding by concatenating edge slices: exports as plain Slice/Concat (F.pad's
        # replicate mode exports a shape-computing subgraph the exporter warns it cannot fold).
        x = torch.cat([x[:, :, :1], x[:, :, :1], x, x[:, :, -1:], x[:, :, -1:]], dim=2)
        x = torch.cat([x[:, :, :, :1], x[:, :, :, :1], x, x[:, :, :, -1:], x[:, :, :, -1:]], dim=3)
        return F.conv2d(x, self.weight)


class LumaRestore(nn.Module):
    """Same-size luma restoration (compression-artifact removal, denoising): a plain CNN predicting
    the residual that is added back to its input (DnCNN-style global skip).

    ``1 + blocks + 1`` 3x3 convolutions with ReLU between them (INT8-friendly, see
    :class:`LumaSR`). With ``down=1`` they run at full resolution, receptive field
    ``2 * (blocks + 2) + 1`` pixels. With ``down=2`` the input is first rearranged losslessly into
    four half-resolution planes (pixel unshuffle, as FFDNet) and the residual shuffled back: the same
    cost per layer buys four times the channels and twice the receptive field
    (``2 * (2 * (blocks + 2) + 1)`` pixels), which JPEG's 8x8 blocks and H.264's 16x16 macroblocks
    need. The last layer starts at zero, so an untrained network is the identity.

    Input ``(N, 1, h, w)`` float32 Y in [0, 1] (any size: odd sizes are edge-padded inside); output
    ``(N, 1, h, w)`` float32 (not clipped).
    """

    def __init__(self, channels: int = 32, blocks: int = 6, down: int = 1) -> None:
        super().__init__()
        self.scale, self.down = 1, down
        planes = down * down
        layers: list[nn.Module] = [nn.Conv2d(planes, channels, 3, padding=1), nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
        for m in layers:  # He initialisation: activations keep their scale through the ReLU stack
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        last = nn.Conv2d(channels, planes, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down == 1:
            return x + self.body(x)
        h, w = x.shape[-2:]
        d = self.down
        # Edge-pad odd sizes up to a multiple of ``down`` and crop back: any frame size works.
        xp = F.pad(x, (0, (d - w % d) % d, 0, (d - h % d) % d), mode="replicate")
        r = F.pixel_shuffle(self.body(F.pixel_unshuffle(xp, d) - 0.5), d)  # centred input for He init
        return x + r[:, :, :h, :w]


def deepened(net: LumaSR, blocks: int) -> LumaSR:
    """A copy of ``net`` with ``blocks`` body convolutions (at least ``net``'s), computing exactly the
    same function: the extra convolution + PReLU pairs go in before the last convolution, each
    convolution the identity (Dirac kernel, zero bias) and each PReLU slope 1. Continued training
    then uses the added depth (capacity and ``2 * extra`` more pixels of receptive field) starting
    from the trained network's quality instead of from scratch."""
    convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
    old_blocks, channels = len(convs) - 2, convs[0].out_channels
    if blocks < old_blocks:
        raise ValueError(f"cannot deepen {old_blocks} body convolutions to {blocks}")
    if not isinstance(net.body[1], nn.PReLU):
        raise ValueError("deepened needs the PReLU variant (a ReLU cannot pass negative values through)")
    out = LumaSR(net.scale, channels, blocks, "prelu", net.frames)
    keep = 2 * (old_blocks + 1)  # first conv + activation, then the old body pairs
    for i in range(keep):
        out.body[i].load_state_dict(net.body[i].state_dict())
    with torch.no_grad():
        for i in range(keep, 2 * (blocks + 1), 2):
            conv, act = out.body[i], out.body[i + 1]
            assert isinstance(conv, nn.Conv2d) and isinstance(act, nn.PReLU)
            nn.init.dirac_(conv.weight)
            nn.init.zeros_(conv.bias)
            act.weight.fill_(1.0)
    out.body[-1].load_state_dict(net.body[-1].state_dict())
    return out


def body_blocks(state: dict[str, torch.Tensor]) -> int:
    """Number of body convolutions of a ``LumaSR`` state dict (its convolutions less the first and last)."""
    return sum(1 for k, v in state.items() if k.startswith("body.") and k.endswith(".weight") and v.dim() == 4) - 2


def he_init(net: LumaSR) -> None:
    """He-normal weights (PReLU's initial slope 0.25) for every convolution of a ``LumaSR`` but its
    zero-initialised last one. Deep or wide variants need it: PyTorch's default initialisation
    shrinks the signal layer by layer and they start slowly (``restore_joint_x2``, 48 channels:
    the first 1000 iterations stayed below bicubic without it)."""
    convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
    for m in convs[:-1]:
        nn.init.kaiming_normal_(m.weight, a=0.25, nonlinearity="leaky_relu")
        nn.init.zeros_(m.bias)


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))``, 3x3, ``channels`` wide; the second convolution starts at a tenth
    of its He scale so a deep stack of blocks starts close to the identity and trains stably."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1)
        self.b = nn.Conv2d(channels, channels, 3, padding=1)
        for conv in (self.a, self.b):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        with torch.no_grad():
            self.b.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.relu(self.a(x)))


class LumaUNet(nn.Module):
    """Same-size luma restoration on a block-aligned pyramid (compression-artifact removal).

    A U-Net whose levels are 1, 1/2, 1/4, ... of the input resolution, each reached by a lossless
    pixel unshuffle (2x2 pixels -> 4x the channels) and a 1x1 convolution, and left by a 1x1
    convolution and a pixel shuffle added to the level's skip. With ``len(widths) == 4`` the lowest
    level has one cell per aligned 8x8 block: a JPEG / MPEG-2 DCT block (and a quarter of an H.264
    macroblock) is one position there, so its 3x3 convolutions see whole neighbouring blocks, and
    every level costs about the same per input pixel when the widths double level by level
    (``widths=(16, 32, 64, 128)``: about 2.3 k multiply-adds per pixel per convolution, against 9.2 k
    for one 32-channel full-resolution convolution of :class:`LumaRestore`). Receptive field: over a
    hundred pixels with four residual blocks at 1/8.

    The grid is the frame's: inputs are edge-padded at the right and bottom only, so the cells stay
    aligned with blocks counted from the top-left corner, as codecs count them. Callers that cut
    tiles must start them at multiples of :attr:`grid` (``restora.grid`` in the model's metadata).

    Input ``(N, 1, h, w)`` float32 Y in [0, 1], any size; output ``(N, 1, h, w)`` float32, the input
    plus a predicted residual (not clipped). The last convolution starts at zero: an untrained
    network is the identity.

    ``scale > 1`` makes it a restoring super-resolution network (``train_joint --arch unet``): the last
    convolution predicts ``scale**2`` residual sub-pixel planes added to the input's bicubic phases
    (:class:`BicubicPhases`, as :class:`LumaSR`) before one pixel shuffle; output
    ``(N, 1, h*scale, w*scale)``, an untrained network is bicubic. The grid is then the input's
    (the low-resolution frame a codec compressed).
    """

    def __init__(
        self, widths: tuple[int, ...] = (16, 32, 64, 128), blocks: tuple[int, ...] = (1, 1, 1, 4), scale: int = 1
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks) or len(widths) < 2:
            raise ValueError(f"widths {widths} and blocks {blocks} need the same length, at least 2")
        self.scale, self.grid = scale, 2 ** (len(widths) - 1)
        levels = list(zip(widths[:-1], blocks[:-1], strict=True))  # (width, blocks) above the lowest level
        self.head = nn.Conv2d(1, widths[0], 3, padding=1)
        self.enc = nn.ModuleList(nn.Sequential(*[ResBlock(w) for _ in range(n)]) for w, n in levels)
        self.down = nn.ModuleList(nn.Conv2d(4 * a, b, 1) for a, b in pairwise(widths))
        self.mid = nn.Sequential(*[ResBlock(widths[-1]) for _ in range(blocks[-1])])
        self.up = nn.ModuleList(nn.Conv2d(b, 4 * a, 1) for a, b in pairwise(widths))
        self.dec = nn.ModuleList(nn.Sequential(*[ResBlock(w) for _ in range(n)]) for w, n in levels)
        self.tail = nn.Conv2d(widths[0], scale * scale, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        self.bicubic = BicubicPhases(scale) if scale > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        g = self.grid
        xp = F.pad(x, (0, (g - w % g) % g, 0, (g - h % g) % g), mode="replicate")
        f = self.head(xp - 0.5)  # centred input for He init
        skips = []
        for enc, down in zip(self.enc, self.down, strict=True):
            f = enc(f)
            skips.append(f)
            f = down(F.pixel_unshuffle(f, 2))
        f = self.mid(f)
        for i in reversed(range(len(self.down))):
            f = self.dec[i](F.pixel_shuffle(self.up[i](f), 2) + skips[i])
        r = self.tail(f)[:, :, :h, :w]
        if self.bicubic is None:
            return x + r
        return F.pixel_shuffle(r + self.bicubic(x), self.scale)
