"""A managed local Triton Inference Server for machines without a GPU (development, tests, CI).

Triton comes from the ``nvidia-pytriton`` wheel, which ships ``tritonserver`` with the python
backend only; models therefore load with their ``configs/cpu.pbtxt`` (``backend: "python"``,
``1/model.py`` running ``1/model.onnx`` with ONNX Runtime). The wheel needs ``numpy<2``, so the
server gets its own virtualenv (``.venv-triton``, pinned by ``serving/triton-constraints.txt``),
exactly like a separate service.

::

    python -m serving.triton_server venv      # create/update .venv-triton (idempotent)
    python -m serving.triton_server up        # start in the background, wait until ready
    python -m serving.triton_server status
    python -m serving.triton_server down      # SIGTERM, then SIGKILL after a timeout
    python -m serving.triton_server serve     # foreground until Ctrl-C

State lives in ``.triton/``: the prepared backend directory, ``tritonserver.pid``,
``tritonserver.json`` (ports, shared-memory prefix) and ``tritonserver.log``.

From Python (tests, benchmarks)::

    server = start(Path("triton_models"), http_port=18000, grpc_port=18001, metrics_port=18002,
                   state_dir=tmp / "triton")
    ...  # server.grpc_url == "127.0.0.1:18001"
    server.stop()
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from restora.errors import ConfigError, PermanentServiceError, ServiceError, TransientServiceError

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV = REPO_ROOT / ".venv-triton"
STATE_DIR = REPO_ROOT / ".triton"
REPOSITORY = REPO_ROOT / "triton_models"
CONSTRAINTS = Path(__file__).resolve().with_name("triton-constraints.txt")
REQUIREMENTS = ("nvidia-pytriton", "onnxruntime", "numpy")  # versions: CONSTRAINTS
PID_FILE = "tritonserver.pid"
STATE_FILE = "tritonserver.json"
LOG_FILE = "tritonserver.log"
SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region_"  # the python backend's default; ours adds a token


def _log(msg: str) -> None:
    print(f"[triton] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The server's virtualenv


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3.*/site-packages"))
    if not found:
        raise ConfigError(f"{venv} is not a virtualenv (no lib/python3.*/site-packages); run `make triton-venv`")
    return found[0]


def _stamp(venv: Path) -> str:
    h = hashlib.sha256(CONSTRAINTS.read_bytes())
    h.update(" ".join(REQUIREMENTS).encode())
    h.update(str(venv.resolve()).encode())
    return h.hexdigest()


def ensure_venv(venv: Path = VENV, python: str | None = None, quiet: bool = True) -> Path:
    """Create or update the Triton server's virtualenv; returns its ``site-packages``.

    Idempotent: a stamp file records the hash of the constraints file, so a second call with
    unchanged pins only checks the stamp. Installs ``nvidia-pytriton``, ``onnxruntime`` and
    ``numpy<2`` with ``pip -c serving/triton-constraints.txt``.

    Args:
        venv: virtualenv directory (``.venv-triton`` at the repository root by default).
        python: interpreter to base it on; default the running one (the stub needs its
            major.minor among the wheel's ``python_backend_stubs``).
        quiet: pass ``-q`` to pip.

    Raises:
        ConfigError: the virtualenv cannot be created or pip fails.
    """
    stamp_file = venv / ".restora-triton-installed"
    want = _stamp(venv)
    if stamp_file.is_file() and stamp_file.read_text().strip() == want and _venv_python(venv).exists():
        return _site_packages(venv)
    base = python or sys.executable
    try:
        if not _venv_python(venv).exists():
            _log(f"creating {venv}")
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
        _log(f"installing {' '.join(REQUIREMENTS)} into {venv} (pinned by {CONSTRAINTS.name})")
        cmd = [str(_venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
        cmd += ["-q"] if quiet else []
        cmd += ["-c", str(CONSTRAINTS), *REQUIREMENTS]
        subprocess.run(cmd, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConfigError(f"cannot set up the Triton virtualenv {venv}: {exc}") from exc
    stamp_file.write_text(want + "\n")
    return _site_packages(venv)


@dataclass(frozen=True)
class _Install:
    """Paths inside the Triton virtualenv."""

    venv: Path
    site: Path

    @property
    def root(self) -> Path:
        return self.site / "pytriton" / "tritonserver"

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def libs(self) -> Path:
        return self.site / "nvidia_pytriton.libs"

    def python_version(self) -> str:
        out = subprocess.run(
            [str(_venv_python(self.venv)), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip()

    def libdir(self) -> str:
        out = subprocess.run(
            [str(_venv_python(self.venv)), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR') or '')"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip() or str(sysconfig.get_config_var("LIBDIR") or "")


def prepare_backends(install: _Install, dest: Path) -> Path:
    """Copy the wheel's backends plus the python stub matching the venv's Python into ``dest``.

    Returns ``dest`` (for ``--backend-directory``). Re-copies only when the source changed.
    """
    ver = install.python_version()
    stub = install.root / "python_backend_stubs" / ver / "triton_python_backend_stub"
    if not stub.is_file():
        raise ConfigError(f"nvidia-pytriton has no python backend stub for Python {ver} ({stub})")
    marker = dest / ".source"
    source_id = f"{install.root.resolve()} {stub.stat().st_size} {stub.stat().st_mtime_ns}"
    if marker.is_file() and marker.read_text() == source_id and (dest / "python" / stub.name).is_file():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(install.root / "backends", dest)
    shutil.copy2(stub, dest / "python" / stub.name)
    marker.write_text(source_id)
    return dest


# --------------------------------------------------------------------------------------------
# Starting, watching and stopping


def port_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port`` (connections in TIME_WAIT do not count, as for Triton)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports that are free on ``host`` right now (for tests and benchmarks)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def log_tail(path: Path, lines: int = 30) -> str:
    """Last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) tritonserver process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"tritonserver" in cmdline


def ready(host: str, http_port: int, timeout: float = 2.0) -> bool:
    """True if ``GET /v2/health/ready`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://{host}:{http_port}/v2/health/ready", timeout=timeout) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class TritonServer:
    """Handle of a running local Triton server (from :func:`start` or the pid/state files)."""

    pid: int
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int
    repository: str
    state_dir: str
    shm_prefix: str
    started: float = field(default_factory=time.time)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def http_url(self) -> str:
        """``host:port`` of the HTTP endpoint (tritonclient.http's ``url``)."""
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the gRPC endpoint (tritonclient.grpc's ``url``)."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        return Path(self.state_dir) / LOG_FILE

    def alive(self) -> bool:
        """True while the server process runs."""
        if self._proc is not None:
            return self._proc.poll() is None
        return _pid_alive(self.pid)

    def ready(self) -> bool:
        """True when the server answers ``/v2/health/ready``."""
        return ready(self.host, self.http_port)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the server is ready.

        Raises:
            PermanentServiceError: the process exited (bad model, port taken...); the message
                holds the tail of the log.
            TransientServiceError: not ready within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            if not self.alive():
                code = self._proc.returncode if self._proc is not None else "?"
                raise PermanentServiceError(
                    f"tritonserver exited with status {code} while starting; log {self.log_path}:\n"
                    + log_tail(self.log_path)
                )
            time.sleep(0.2)
        raise TransientServiceError(
            f"tritonserver (pid {self.pid}) not ready after {timeout:.0f} s; log {self.log_path}:\n"
            + log_tail(self.log_path)
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; remove our shared memory and pid file."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if not self._wait_exit(timeout):
                _log(f"tritonserver (pid {self.pid}) ignored SIGTERM for {timeout:.0f} s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._wait_exit(5.0)
        remove_shm(self.shm_prefix)
        state = Path(self.state_dir)
        try:
            ours = (state / PID_FILE).read_text().strip() == str(self.pid)
        except OSError:
            ours = False
        if ours:  # a newer server may have replaced the files: leave those alone
            for name in (PID_FILE, STATE_FILE):
                with contextlib.suppress(OSError):
                    (state / name).unlink()

    def _wait_exit(self, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(self.pid):
                return True
            time.sleep(0.1)
        return not _pid_alive(self.pid)

    def __enter__(self) -> TritonServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_STATE_FIELDS = tuple(f.name for f in fields(TritonServer) if not f.name.startswith("_"))


def remove_shm(prefix: str) -> list[str]:
    """Remove ``/dev/shm/<prefix>*`` (python-backend regions a server left); returns their names."""
    if not prefix.startswith(SHM_PREFIX) or len(prefix) <= len(SHM_PREFIX):
        raise ValueError(f"refusing to remove shared memory with a foreign prefix {prefix!r}")
    removed = []
    for path in SHM_DIR.glob(prefix + "*"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path.name)
    return removed


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the starting process dies (tests, serve, benchmarks)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(
    repository: Path = REPOSITORY,
    http_port: int = 8000,
    grpc_port: int = 8001,
    metrics_port: int = 8002,
    host: str = "127.0.0.1",
    *,
    state_dir: Path = STATE_DIR,
    venv: Path = VENV,
    config_name: str = "cpu",
    wait: bool = True,
    timeout: float = 120.0,
    log_verbose: int = 0,
    detach: bool = False,
) -> TritonServer:
    """Start ``tritonserver`` on ``repository`` and (by default) wait until it is ready.

    Args:
        repository: Triton model repository (``<model>/configs/<config_name>.pbtxt`` per model).
        http_port, grpc_port, metrics_port: ports on ``host``.
        host: address to bind (loopback by default; the server has no authentication).
        state_dir: where the backend directory, pid, state and log files go.
        venv: the server's virtualenv (created by :func:`ensure_venv` if needed).
        config_name: ``--model-config-name``; ``cpu`` selects ``configs/cpu.pbtxt``.
        wait: block until ``/v2/health/ready`` answers.
        timeout: seconds to wait for readiness.
        log_verbose: Triton's ``--log-verbose`` level.
        detach: start the server in its own session so it outlives this process (``up``);
            otherwise it is sent SIGTERM when this process dies.

    Returns:
        A :class:`TritonServer` handle; its pid is in ``<state_dir>/tritonserver.pid``.

    Raises:
        ConfigError: missing repository or virtualenv problems.
        PermanentServiceError: a port is taken or the server exited while starting (log tail included).
        TransientServiceError: not ready within ``timeout``.
    """
    repository = repository.resolve()
    if not repository.is_dir():
        raise ConfigError(f"model repository {repository} does not exist")
    for port in (http_port, grpc_port, metrics_port):
        if not port_free(host, port):
            raise PermanentServiceError(f"port {port} on {host} is in use (another Triton? `make triton-down`)")
    state = state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    running = read_state(state)
    if running is not None and running.alive():
        raise PermanentServiceError(f"a tritonserver (pid {running.pid}) already runs from {state}; stop it first")
    install = _Install(venv.resolve(), ensure_venv(venv))
    backends = prepare_backends(install, state / "backends")
    shm_prefix = f"{SHM_PREFIX}restora_{secrets.token_hex(4)}_"
    remove_shm(shm_prefix)
    libdir = install.libdir()
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (libdir, str(install.libs), os.environ.get("LD_LIBRARY_PATH", "")) if p
    )  # the interpreter's own libpython first, then the wheel's bundled libraries (libcudart...)
    env["PATH"] = os.pathsep.join((str(install.venv / "bin"), os.environ.get("PATH", "")))  # stub runs python3
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    cmd = [
        str(install.binary),
        f"--model-repository={repository}",
        f"--model-config-name={config_name}",
        f"--backend-directory={backends}",
        f"--cache-directory={install.root / 'caches'}",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        f"--http-address={host}",
        f"--http-port={http_port}",
        f"--grpc-address={host}",
        f"--grpc-port={grpc_port}",
        f"--metrics-address={host}",
        f"--metrics-port={metrics_port}",
        "--allow-gpu-metrics=false",
        "--exit-timeout-secs=5",
        f"--log-verbose={log_verbose}",
    ]
    log_path = state / LOG_FILE
    with log_path.open("wb") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=state,
            start_new_session=detach, preexec_fn=None if detach else _die_with_parent,
        )  # fmt: skip
    server = TritonServer(
        pid=proc.pid, host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
        repository=str(repository), state_dir=str(state), shm_prefix=shm_prefix, _proc=proc,
    )  # fmt: skip
    (state / PID_FILE).write_text(f"{proc.pid}\n")
    info = {k: getattr(server, k) for k in _STATE_FIELDS}
    (state / STATE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    if wait:
        try:
            server.wait_ready(timeout)
        except ServiceError:
            server.stop(timeout=5.0)
            raise
    return server


def read_state(state_dir: Path = STATE_DIR) -> TritonServer | None:
    """The server recorded in ``state_dir`` (pid and state files), or None if there is none."""
    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
        info = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    info["pid"] = pid
    return TritonServer(**{k: v for k, v in info.items() if k in _STATE_FIELDS})


def wait_ready(timeout: float = 120.0, state_dir: Path = STATE_DIR) -> TritonServer:
    """Wait until the server recorded in ``state_dir`` is ready; returns its handle.

    Raises:
        PermanentServiceError: no server is recorded, or it exited.
        TransientServiceError: not ready within ``timeout``.
    """
    server = read_state(state_dir)
    if server is None:
        raise PermanentServiceError(f"no tritonserver recorded in {state_dir} (start one: `make triton-up`)")
    server.wait_ready(timeout)
    return server


def stop(state_dir: Path = STATE_DIR, timeout: float = 15.0) -> bool:
    """Stop the server recorded in ``state_dir``; returns False if none was running."""
    server = read_state(state_dir)
    if server is None:
        return False
    was_alive = server.alive()
    server.stop(timeout)
    return was_alive


@contextlib.contextmanager
def running(repository: Path = REPOSITORY, **kwargs: object) -> Iterator[TritonServer]:
    """``with running(repo, http_port=..., state_dir=...) as server:`` start, yield, stop."""
    server = start(repository, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# Command line


def _models(server: TritonServer) -> list[dict[str, str]]:
    req = urllib.request.Request(f"http://{server.http_url}/v2/repository/index", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return list(json.loads(r.read()))
    except (OSError, ValueError):
        return []


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``python -m serving.triton_server venv|up|down|status|serve``."""
    p = argparse.ArgumentParser(prog="python -m serving.triton_server", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("venv", "up", "down", "status", "serve"))
    p.add_argument("--repository", type=Path, default=REPOSITORY)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--state-dir", type=Path, default=STATE_DIR)
    p.add_argument("--venv", type=Path, default=VENV)
    p.add_argument("--config-name", default="cpu", help="--model-config-name (cpu = configs/cpu.pbtxt)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness / shutdown")
    p.add_argument("--log-verbose", type=int, default=0)
    a = p.parse_args(argv)
    try:
        if a.command == "venv":
            print(ensure_venv(a.venv, quiet=False))
            return 0
        if a.command == "down":
            stopped = stop(a.state_dir, timeout=min(a.timeout, 30.0))
            print("tritonserver stopped" if stopped else "tritonserver was not running")
            return 0
        if a.command == "status":
            server = read_state(a.state_dir)
            if server is None or not server.alive():
                print("tritonserver: not running")
                return 3
            state = "ready" if server.ready() else "not ready"
            print(f"tritonserver: pid {server.pid}, {state}, http {server.http_url}, grpc {server.grpc_url}")
            for m in _models(server):
                print(f"  {m.get('name')} v{m.get('version', '?')}: {m.get('state', '?')} {m.get('reason', '')}")
            return 0 if state == "ready" else 1
        kwargs = dict(
            http_port=a.http_port, grpc_port=a.grpc_port, metrics_port=a.metrics_port, host=a.host,
            state_dir=a.state_dir, venv=a.venv, config_name=a.config_name, timeout=a.timeout,
            log_verbose=a.log_verbose,
        )  # fmt: skip
        if a.command == "up":
            current = read_state(a.state_dir)
            if current is not None and current.alive() and current.ready():
                print(
                    f"tritonserver already running: pid {current.pid}, http {current.http_url}, grpc {current.grpc_url}"
                )
                return 0
            if current is not None:
                current.stop(timeout=5.0)  # stale state or a server that never became ready
            server = start(a.repository, detach=True, **kwargs)
            print(f"tritonserver ready: pid {server.pid}, http {server.http_url}, grpc {server.grpc_url}")
            print(f"log: {server.log_path}")
            return 0
        # serve: foreground until Ctrl-C / SIGTERM
        server = start(a.repository, **kwargs)
        print(f"tritonserver ready: pid {server.pid}, http {server.http_url}, grpc {server.grpc_url} (Ctrl-C stops)")
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while server.alive():
                time.sleep(0.5)
            print(f"tritonserver exited; log {server.log_path}:\n{log_tail(server.log_path)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            server.stop(timeout=min(a.timeout, 30.0))
    except (ServiceError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
