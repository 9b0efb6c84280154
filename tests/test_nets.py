"""The training networks' building blocks compute what their docstrings say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.export import export_onnx
from training.nets import BicubicPhases, LumaRestore, LumaSR


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
