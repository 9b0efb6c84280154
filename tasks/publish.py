"""Task ``publish``: make the output and its report appear atomically at the destination."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from prefect import task

from restora import manifest, telemetry
from tasks import _runtime
from tasks.package import PackageRef


@task(name="publish", tags=["io"], **_runtime.RETRY)
def publish(pkg: PackageRef, output_uri: str, carrier: dict[str, str]) -> str:
    """Copy the staged output to ``output_uri`` (temp file + rename, or temp key + server-side copy),
    then its report, then record it in the asset's ``manifest.json`` (last: listed means complete)."""
    with telemetry.span("task.publish", carrier, **{"restora.output": telemetry.safe_attr(output_uri)}):
        st = _runtime.store()
        out = _runtime.deliver(st.local_path(pkg.output_key), output_uri)
        with tempfile.TemporaryDirectory() as tmp:
            rp = Path(tmp) / "report.json"
            rp.write_text(json.dumps(pkg.report, indent=2))
            _runtime.deliver(rp, out + ".report.json")
        entry = manifest.output_entry(pkg.report, out, pkg.output_key, pkg.report_key)
        manifest.record_output(st, pkg.report, entry)
        return out
