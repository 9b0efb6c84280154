"""Re-export trained ``LumaSR`` models with the current graph of :class:`training.nets.LumaSR`,
same weights, checked to compute the same output.

For graph changes that keep the function (such as the bicubic skip moving from a high-resolution
``Resize`` into the sub-pixel domain): the committed models need no re-training. Each ONNX file
is rebuilt as a network (:func:`training.export.lumasr_from_onnx`), exported again, compared with
the original on random inputs of odd sizes through ONNX Runtime, and replaced in place
(atomically, ``restora.*`` metadata carried over) only if every output agrees to ``--tol``.

    python -m training.reexport triton_models/sr_x2/2/model.onnx training/runs/sr_x2_relu/model.onnx
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from training.export import copy_metadata, export_onnx, lumasr_from_onnx


def _run(path: Path, x: np.ndarray) -> tuple[np.ndarray, str, str]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    return np.asarray(sess.run(None, {inp: x})[0]), inp, out


def reexport(path: Path, tol: float = 1e-4) -> float:
    """Re-export ``path`` in place; returns the largest absolute output difference on the check
    inputs. Raises ``ValueError`` (file untouched) if it exceeds ``tol``."""
    net = lumasr_from_onnx(path)
    rng = np.random.default_rng(0)
    inputs = [rng.random((2, net.frames, h, w), dtype=np.float32) for h, w in ((37, 29), (64, 81))]
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _, inp, out = _run(path, inputs[0])
        export_onnx(net, tmp, inp, out, in_channels=net.frames)
        copy_metadata(path, tmp)
        diff = max(float(np.abs(_run(tmp, x)[0] - _run(path, x)[0]).max()) for x in inputs)
        if diff > tol:
            raise ValueError(f"{path}: re-exported graph differs by {diff:.3g} (> {tol:g}); left unchanged")
        tmp.replace(path)
        return diff
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m training.reexport")
    ap.add_argument("onnx", type=Path, nargs="+", help="exported LumaSR models (replaced in place)")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest output difference accepted")
    a = ap.parse_args(argv)
    for path in a.onnx:
        print(f"{path}: re-exported, max |difference| {reexport(path, a.tol):.2e}", flush=True)


if __name__ == "__main__":
    main()
