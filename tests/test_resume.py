"""Resume: SIGKILL the worker process mid-run, run again: finished chunks are reused, and the output is
byte-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cut_frames, make_clip

pytestmark = pytest.mark.slow


def restore_cmd(src: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "restora.cli",
        "restore",
        str(src),
        "-o",
        str(out),
        "--scale",
        "2",
        "--chunk-frames",
        "6",
    ]


def test_killed_run_resumes_from_stored_chunks(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "src.mp4", cut_frames(60, [30], h=96, w=128), audio_seconds=2.4)
    env = {**os.environ, "RESTORA_STORAGE__ROOT": str(tmp_path / "store"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    out = tmp_path / "resumed.mp4"
    proc = subprocess.Popen(
        restore_cmd(src, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    chunk_dir = tmp_path / "store" / "assets"
    deadline = time.monotonic() + 240
    done: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        done = list(chunk_dir.glob("*/chunks/*/*.mov"))
        if len(done) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make the clip longer"
    os.killpg(proc.pid, signal.SIGKILL)  # the worker dies: no polite cancel, no clean-up
    proc.wait(30)
    assert 3 <= len(done) < 10 and not out.exists()

    r = subprocess.run(restore_cmd(src, out), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(Path(str(out) + ".report.json").read_text())
    reused = sum(c["reused"] for c in report["chunks"])
    assert len(report["chunks"]) == 10 and reused >= 3

    env_fresh = {**env, "RESTORA_STORAGE__ROOT": str(tmp_path / "store2")}
    ref = tmp_path / "uninterrupted.mp4"
    r = subprocess.run(restore_cmd(src, ref), env=env_fresh, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ref.read_bytes()
