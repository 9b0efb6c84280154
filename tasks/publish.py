"""Task ``publish``: make the output and its report appear atomically at the destination."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from prefect import task

from restora import telemetry
from restora.storage import publish_file
from tasks import _runtime
from tasks.package import PackageRef


def report_path(output: Path) -> Path:
    """Where the report of ``output`` is published."""
    return output.with_name(output.name + ".report.json")


@task(name="publish", tags=["io"], **_runtime.RETRY)
def publish(pkg: PackageRef, output_uri: str, carrier: dict[str, str]) -> str:
    """Copy the staged output to ``output_uri`` (temp file + rename), then its report."""
    dst = Path(output_uri[len("file://") :] if output_uri.startswith("file://") else output_uri)
    with telemetry.span("task.publish", carrier, **{"restora.output": telemetry.safe_attr(output_uri)}):
        st = _runtime.store()
        publish_file(st.local_path(pkg.output_key), dst)
        with tempfile.TemporaryDirectory() as tmp:
            rp = Path(tmp) / "report.json"
            rp.write_text(json.dumps(pkg.report, indent=2))
            publish_file(rp, report_path(dst))
        return str(dst)
