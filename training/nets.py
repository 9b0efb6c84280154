"""Network definitions trained by the recipes in this folder and exported to ONNX.

All networks take and return NCHW float32 tensors in [0, 1]; nothing here reads files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LumaSR(nn.Module):
    """ESPCN-style luma super-resolution with a global bicubic skip (residual learning, as VDSR).

    The body runs at low resolution (cheap), its last convolution predicts ``scale**2`` residual
    sub-pixel planes that a pixel shuffle arranges at high resolution, and the result is added to
    a bicubic upsampling of the input. The network learns only the detail bicubic misses, which
    makes it train quickly on a CPU.

    Input ``(N, 1, h, w)`` float32 Y in [0, 1]; output ``(N, 1, h*scale, w*scale)`` float32
    (not clipped; callers clip).

    ``frames > 1`` (odd) makes it a multi-frame video model (early fusion, as VESPCN's): the input
    is ``(N, frames, h, w)``, consecutive frames' luma oldest first, the first convolution sees all
    of them, and the output is the middle frame with the bicubic skip taken from that frame. No
    explicit motion compensation: only motions within the body's receptive field
    (``2 * (blocks + 2) + 1`` LR pixels) can be used.

    ``act="relu"`` is the INT8-friendly variant: ONNX Runtime fuses Conv+ReLU into one quantized
    convolution, so the body stays in int8 between layers; PReLU (the default, slightly better in
    float) forces a dequantize/quantize pair around every activation.
    """

    def __init__(self, scale: int, channels: int = 32, blocks: int = 5, act: str = "prelu", frames: int = 1) -> None:
        super().__init__()
        self.scale, self.frames = scale, frames
        if act not in ("prelu", "relu"):
            raise ValueError(f"act must be prelu or relu, not {act!r}")
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be odd, not {frames}")

        def activation() -> nn.Module:
            return nn.PReLU(channels) if act == "prelu" else nn.ReLU()

        layers: list[nn.Module] = [nn.Conv2d(frames, channels, 3, padding=1), activation()]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), activation()]
        layers += [nn.Conv2d(channels, scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        # Start as exact bicubic: the residual branch's last layer is zero-initialised.
        last = layers[-2]
        assert isinstance(last, nn.Conv2d)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = x if self.frames == 1 else x[:, self.frames // 2 : self.frames // 2 + 1]
        up = F.interpolate(mid, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return up + self.body(x)


class LumaRestore(nn.Module):
    """Same-size luma restoration (compression-artifact removal, denoising): a plain CNN predicting
    the residual that is added back to its input (DnCNN-style global skip).

    ``1 + blocks + 1`` 3x3 convolutions with ReLU between them (INT8-friendly, see
    :class:`LumaSR`), receptive field ``2 * (blocks + 2) + 1`` pixels: wider than an 8x8 JPEG or
    H.264 transform block at the default depth. The last layer starts at zero, so an untrained
    network is the identity.

    Input ``(N, 1, h, w)`` float32 Y in [0, 1]; output ``(N, 1, h, w)`` float32 (not clipped).
    """

    def __init__(self, channels: int = 32, blocks: int = 6) -> None:
        super().__init__()
        self.scale = 1
        layers: list[nn.Module] = [nn.Conv2d(1, channels, 3, padding=1), nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
        for m in layers:  # He initialisation: activations keep their scale through the ReLU stack
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        last = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def he_init(net: LumaSR) -> None:
    """He-normal weights (PReLU's initial slope 0.25) for every convolution of a ``LumaSR`` but its
    zero-initialised last one. Deep or wide variants need it: PyTorch's default initialisation
    shrinks the signal layer by layer and they start slowly (``restore_joint_x2``, 48 channels:
    the first 1000 iterations stayed below bicubic without it)."""
    convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
    for m in convs[:-1]:
        nn.init.kaiming_normal_(m.weight, a=0.25, nonlinearity="leaky_relu")
        nn.init.zeros_(m.bias)
