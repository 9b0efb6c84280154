"""Read a run's span file (JSON lines) and print the span tree with durations (``restora trace``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from restora.errors import InputError

SHOWN_ATTRS = (
    "restora.shot",
    "restora.chunk_range",
    "restora.frames",
    "restora.model",
    "restora.backend",
    "restora.fps",
    "restora.bytes",
    "restora.reused",
)


def find_span_file(path: Path) -> Path:
    """``path`` itself, or the span file inside a run directory (``spans.jsonl`` / ``*.spans.jsonl``)."""
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted([*path.glob("spans.jsonl"), *path.glob("*.spans.jsonl")])
        if found:
            return found[0]
    raise InputError(f"{path}: no span file (expected a *.spans.jsonl file or a run directory holding one)")


def load_spans(path: Path) -> list[dict[str, Any]]:
    """Spans of a JSON-lines file written by ``restora.telemetry``."""
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a span file ({exc})") from exc


def render_tree(spans: list[dict[str, Any]]) -> str:
    """The span forest, children in start order: ``name  duration  status  key attributes``."""
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s["span_id"] for s in spans}
    for s in spans:
        parent = s["parent_id"] if s["parent_id"] in ids else None
        by_parent.setdefault(parent, []).append(s)
    for children in by_parent.values():
        children.sort(key=lambda s: s["start_ns"])
    lines: list[str] = []

    def walk(s: dict[str, Any], prefix: str, last: bool, top: bool) -> None:
        ms = (s["end_ns"] - s["start_ns"]) / 1e6
        attrs = " ".join(
            f"{k.removeprefix('restora.')}={s['attributes'][k]}" for k in SHOWN_ATTRS if k in s["attributes"]
        )
        status = "" if s["status"] != "ERROR" else f"  ERROR {s.get('status_message') or ''}"
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{s['name']}  {ms:,.1f} ms{status}{'  ' + attrs if attrs else ''}")
        kids = by_parent.get(s["span_id"], [])
        for i, k in enumerate(kids):
            walk(k, prefix + ("" if top else ("   " if last else "│  ")), i == len(kids) - 1, False)

    for root in by_parent.get(None, []):
        walk(root, "", True, True)
    return "\n".join(lines)
