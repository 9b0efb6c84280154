"""The training networks' building blocks compute what their docstrings say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.export import export_onnx
from training.nets import BicubicPhases, LumaRestore, LumaSR, LumaUNet


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(1, 5), (7, 9), (32, 33)])
def test_bicubic_phases_equal_interpolate(scale: int, size: tuple[int, int]) -> None:
    x = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(0))
    ours = F.pixel_shuffle(BicubicPhases(scale)(x), scale)
    ref = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    assert ours.shape == ref.shape and float((ours - ref).abs().max()) < 1e-5


def test_untrained_lumasr_is_bicubic() -> None:
    x = torch.rand(1, 5, 12, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = LumaSR(4, 8, 1, frames=5)(x)
    ref = F.interpolate(x[:, 2:3], scale_factor=4, mode="bicubic", align_corners=False)
    assert float((out - ref).abs().max()) < 1e-5
    assert "bicubic.weight" not in LumaSR(2).state_dict(), "fixed kernel: not saved with the weights"


def test_luma_restore_down2_any_size_and_onnx(tmp_path: Path) -> None:
    """Pixel-unshuffle body: identity when untrained, odd sizes handled, ONNX export agrees."""
    import onnxruntime as ort

    net = LumaRestore(8, 1, down=2)
    x = torch.rand(2, 1, 17, 22, generator=torch.Generator().manual_seed(2))
    assert torch.equal(net(x), x)
    for p in net.parameters():  # make the residual non-zero
        torch.nn.init.normal_(p, std=0.1, generator=torch.Generator().manual_seed(3))
    export_onnx(net, tmp_path / "m.onnx", "IN_Y", "OUT_Y")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for h, w in ((17, 22), (32, 33), (9, 9)):
        x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(h))
        with torch.no_grad():
            ref = net(x).numpy()
        out = sess.run(None, {"IN_Y": x.numpy()})[0]
        assert out.shape == (1, 1, h, w) and np.abs(out - ref).max() < 1e-5 and np.abs(ref - x.numpy()).max() > 1e-3


def _perturbed(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    for p in net.parameters():  # make the residual non-zero
        torch.nn.init.normal_(p, std=0.05, generator=torch.Generator().manual_seed(seed))
    return net


@pytest.mark.parametrize("scale", [1, 2])
def test_luma_unet_starts_as_identity_or_bicubic_and_exports(tmp_path: Path, scale: int) -> None:
    """Untrained: the identity (x1) or exactly bicubic (x2); any size (padded to the 8x8 grid inside
    and cropped back); the ONNX export agrees with PyTorch at sizes off the grid."""
    import onnxruntime as ort

    net = LumaUNet((4, 8, 8, 16), (1, 1, 1, 1), scale=scale)
    assert net.grid == 8
    x = torch.rand(2, 1, 19, 30, generator=torch.Generator().manual_seed(1))
    ref = x if scale == 1 else F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    with torch.no_grad():
        assert float((net(x) - ref).abs().max()) < 1e-5
    _perturbed(net, 4)
    export_onnx(net, tmp_path / "m.onnx", "IN_Y", "OUT_Y")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for h, w in ((19, 30), (32, 40), (9, 7)):
        x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(h))
        with torch.no_grad():
            ref = net(x).numpy()
        out = sess.run(None, {"IN_Y": x.numpy()})[0]
        assert out.shape == (1, 1, h * scale, w * scale) and np.abs(out - ref).max() < 1e-5


def test_luma_unet_works_on_the_frames_block_grid() -> None:
    """The network is translation-equivariant by whole 8x8 blocks and not by single pixels: moving
    the picture by 8 pixels moves the output by 8 (away from the borders), moving it by 3 does not,
    so its lowest level sees blocks where the codec put them."""
    net = _perturbed(LumaUNet((4, 8, 8, 16), (1, 1, 1, 1)), 5).eval()
    x = torch.rand(1, 1, 96, 96, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        base = net(x)
        for shift, equal in ((8, True), (3, False)):
            moved = net(torch.roll(x, shifts=(shift, shift), dims=(2, 3)))
            inner = (slice(None), slice(None), slice(40, 64), slice(40, 64))  # far from every border
            back = torch.roll(moved, shifts=(-shift, -shift), dims=(2, 3))[inner]
            assert bool(torch.allclose(back, base[inner], atol=1e-5)) is equal, shift
