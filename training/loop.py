"""What every training recipe shares: run arguments, the L1/Adam/cosine training loop, and the
run record (parameters, arguments, hardware) written into ``metrics.json``."""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]  # (input, target) float32 NCHW in [0, 1]
INIT_RUN_KEYS = ("model", "args", "train_seconds", "init_run")  # what a run records of the run it continued


def add_run_args(ap: argparse.ArgumentParser, *, iters: int, lr: float, eval_every: int, data: Path) -> None:
    """``--iters --lr --warmup --eval-every --threads --seed --data --out`` with the recipe's defaults."""
    ap.add_argument("--iters", type=int, default=iters)
    ap.add_argument("--lr", type=float, default=lr, help="Adam learning rate (cosine decay to 1 %%)")
    ap.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    ap.add_argument("--eval-every", type=int, default=eval_every)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=data)
    ap.add_argument("--out", type=Path, required=True)


def add_unet_args(ap: argparse.ArgumentParser, arch: str) -> None:
    """``--arch`` (``arch`` or ``unet``: :class:`training.nets.LumaUNet`), ``--widths``, ``--level-blocks``
    and ``--align`` (video crops start at multiples of it: 16 keeps H.264's block grid)."""
    ap.add_argument("--arch", choices=(arch, "unet"), default=arch, help="network: the recipe's first or LumaUNet")
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128], help="unet: channels per level")
    ap.add_argument("--level-blocks", type=int, nargs="+", default=[1, 1, 1, 4], help="unet: residual blocks a level")
    ap.add_argument("--align", type=int, default=1, help="video crops start at multiples of this (16: H.264's grid)")


def unet_name(a: argparse.Namespace, what: str) -> str:
    """The ``architecture`` line of a LumaUNet run's ``metrics.json``."""
    return (
        f"LumaUNet{what} (block-aligned U-Net, levels 1/1..1/{2 ** (len(a.widths) - 1)} by pixel unshuffle, "
        f"widths {'/'.join(map(str, a.widths))}, residual blocks {'/'.join(map(str, a.level_blocks))}, ReLU)"
    )


def start_run(a: argparse.Namespace) -> np.random.Generator:
    """Threads, seeds and the output folder of a run; returns the run's data generator."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    return np.random.default_rng(a.seed)


def fit(
    net: nn.Module,
    next_batch: Callable[[], Batch],
    a: argparse.Namespace,
    evaluate: Callable[[], dict[str, Any]],
) -> tuple[list[dict[str, Any]], float]:
    """Train ``net`` for ``a.iters`` steps of L1 loss with Adam (learning rate ``a.lr``, linear warm-up
    over ``a.warmup`` steps, cosine decay to 1 %); every ``a.eval_every`` steps and at the end,
    record and print ``{"iter", "loss", "seconds", **evaluate()}``. Returns the history and the training seconds."""
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    warmup = getattr(a, "warmup", 0)

    def factor(step: int) -> float:  # linear warm-up over ``warmup`` steps, then cosine from 1 to 0.01
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return ramp * (0.01 + 0.99 * (1 + math.cos(math.pi * step / a.iters)) / 2)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    history: list[dict[str, Any]] = []
    t0 = time.time()
    running, steps = 0.0, 0
    for it in range(1, a.iters + 1):
        x, y = next_batch()
        loss = F.l1_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        sched.step()
        running, steps = running + float(loss.detach()), steps + 1
        if it % a.eval_every == 0 or it == a.iters:
            net.eval()
            with torch.no_grad():
                scores = evaluate()
            net.train()
            history.append({"iter": it, "loss": running / steps, "seconds": time.time() - t0, **scores})
            print(json.dumps(history[-1]), flush=True)
            running, steps = 0.0, 0
    return history, time.time() - t0


def run_record(a: argparse.Namespace, net: nn.Module) -> dict[str, Any]:
    """``params``, ``args`` and ``hardware`` of a run, for its ``metrics.json``; plus ``init_run`` when the
    run continued another one (``a.init`` beside that run's ``metrics.json``): its model, arguments and
    training seconds (and its own ``init_run``), so a multi-stage model records every stage."""
    record: dict[str, Any] = {
        "params": sum(p.numel() for p in net.parameters()),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "hardware": f"{platform.processor() or platform.machine()}, {a.threads} CPU threads, torch {torch.__version__}",
    }
    init = getattr(a, "init", None)
    if isinstance(init, Path) and (init.parent / "metrics.json").is_file():
        earlier = json.loads((init.parent / "metrics.json").read_text())
        record["init_run"] = {k: earlier[k] for k in INIT_RUN_KEYS if k in earlier}
    return record
