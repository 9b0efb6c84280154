"""Shot detection: synthetic clips with known cuts, and the real clips with recorded truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from restora import media
from restora.shots import detect_shots
from tests.conftest import cut_frames, make_clip


def thumbs_of(path: Path) -> np.ndarray:
    info = media.probe(path)
    return media.scan(path, info)[1]


def test_synthetic_cuts_found_exactly(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "cuts.mp4", cut_frames(60, [20, 45]))
    r = detect_shots(thumbs_of(clip))
    assert r.cuts == [20, 45]
    assert r.shots() == [(0, 20), (20, 45), (45, 60)]


def test_no_cut_in_static_or_moving_clip(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "one.mp4", cut_frames(40, []))
    assert detect_shots(thumbs_of(clip)).cuts == []


def test_real_footage_matches_truth(data: Path) -> None:
    truth = json.loads((data / "video/shots/testvideo.truth.json").read_text())
    r = detect_shots(thumbs_of(data / "video/shots/testvideo.mp4"))
    assert len(r.cuts) == len(truth["hard_cuts"])
    for got, want in zip(r.cuts, truth["hard_cuts"], strict=True):
        assert abs(got - want) <= 1
    for fade in truth["fades"]:
        lo, hi = fade["first_frame"], fade["last_frame"]
        # never several cuts inside a fade, and the fade itself is reported
        assert not [c for c in r.cuts if lo - 1 <= c <= hi + 1]
        assert any(abs(f.first - lo) <= 1 and abs(f.last - hi) <= 1 for f in r.fades), (fade, r.fades)
    starts = [s for s, _ in r.shots()]
    assert all(abs(min(abs(s - c) for s in starts)) <= 1 for c in truth["hard_cuts"])


@pytest.mark.parametrize("name", ["counter.mp4", "fades.mp4"])
def test_no_hard_cut(name: str, data: Path) -> None:
    assert detect_shots(thumbs_of(data / "video/shots" / name)).cuts == []


def test_fades_become_boundaries_not_cuts(data: Path) -> None:
    r = detect_shots(thumbs_of(data / "video/shots/fades.mp4"))
    assert r.fades and not r.cuts
    assert all(e > s for s, e in r.shots())
    assert sum(e - s for s, e in r.shots()) == r.frames
