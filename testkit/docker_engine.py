"""A real Docker engine and a real registry on loopback.

``start_docker_engine`` starts ``dockerd`` with its own socket, data-root, exec-root and pidfile under a
temporary directory, and with every network feature that would create an interface or touch the
firewall switched off (``--bridge=none`` and friends: see ``shared/README.md``, "network rule").
``start_docker_registry`` starts ``docker-registry`` on ``127.0.0.1:<free port>`` with htpasswd auth.
Both are polled until ready and stopped by PID in ``finally``. Before dockerd starts and after it
stops, a ``docker0`` interface, if any exists, is deleted.

The pytest fixtures around them (``docker_engine``, ``docker_host``, ``docker_registry``, ...) are in
``tests/fixtures/docker_engine.py``; the benchmarks use the context managers directly.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import importlib.util
import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import typing as t
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from testkit.processes import free_port

#: dockerd flags that keep it from creating docker0 (172.17.0.1) or touching iptables/forwarding
DOCKERD_NETWORK_FLAGS = (
    "--bridge=none",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--ip-masq=false",
)
#: interfaces a container engine may create that the network rule forbids
FORBIDDEN_INTERFACES = ("docker0", "cni-podman0")
BUSYBOX = "/bin/busybox"


@dataclass(frozen=True)
class DockerEngine:
    """A running dockerd: ``host`` is its ``DOCKER_HOST`` value."""

    host: str
    pid: int
    root: Path

    def client(self) -> t.Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)


@dataclass(frozen=True)
class DockerRegistry:
    """A running registry (``address`` is ``127.0.0.1:PORT``) that accepts ``username``/``password``."""

    address: str
    username: str
    password: str
    pid: int

    @property
    def credentials(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "registry_url": self.address}

    def tags(self, repository: str) -> list[str]:
        """The tags the registry holds for ``repository`` (asked over its HTTP API)."""
        import json

        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            f"http://{self.address}/v2/{repository}/tags/list", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return sorted(json.load(response).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise


# --------------------------------------------------------------------------- network hygiene


def remove_forbidden_interfaces() -> list[str]:
    """Delete ``docker0`` (and podman's bridge) if present; return the names deleted."""
    if shutil.which("ip") is None:
        return []
    listing = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    listing += subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
    present = {line.split(":")[1].strip().split("@")[0] for line in listing.splitlines() if ":" in line}
    deleted = []
    for name in FORBIDDEN_INTERFACES:
        if name in present:
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
            deleted.append(name)
    return deleted


# --------------------------------------------------------------------------- process helpers


def _stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process we started, SIGKILL its group if it does not exit within ``grace``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # dockerd runs its own containerd in the same (new) session: make sure nothing of it survives
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _unmount_below(root: Path) -> None:
    """Lazily unmount anything a killed dockerd left mounted under ``root`` (deepest first)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(root.resolve()) + "/"
    points = sorted(
        (line.split()[1] for line in mounts if line.split()[1].startswith(prefix)), key=len, reverse=True
    )
    for point in points:
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- starting the engine


def _why_no_dockerd() -> str | None:
    if sys.platform != "linux":
        return "dockerd runs only on Linux"
    if os.geteuid() != 0:
        return "dockerd needs root on this machine"
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (.ci/install.d/50-docker.sh installs docker.io)"
    if importlib.util.find_spec("docker") is None:
        return "the docker SDK is not installed (pip install -e '.[docker]')"
    return None


class EngineUnavailable(RuntimeError):
    """dockerd cannot run on this machine (the message says why)."""


@contextlib.contextmanager
def start_docker_engine() -> t.Iterator[DockerEngine]:
    """Start a private dockerd (no bridge, no iptables) in a temporary directory; stop it on exit.

    Raises ``EngineUnavailable`` when it cannot start. Usable outside pytest (benchmarks).
    """
    reason = _why_no_dockerd()
    if reason:
        raise EngineUnavailable(reason)
    remove_forbidden_interfaces()
    # short paths: containerd's sockets live under exec-root and unix socket paths max out at 108 bytes
    root = Path(tempfile.mkdtemp(prefix="se-dockerd-"))
    sock = root / "docker.sock"
    log = root / "dockerd.log"
    args = [
        "dockerd",
        f"--host=unix://{sock}",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        *DOCKERD_NETWORK_FLAGS,
    ]
    proc: subprocess.Popen[bytes] | None = None
    try:
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                args,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        engine = DockerEngine(host=f"unix://{sock}", pid=proc.pid, root=root)
        error = _wait_for_engine(engine, proc, deadline=time.monotonic() + 30)
        if error:
            raise EngineUnavailable(f"{error}\n{_log_tail(log)}")
        yield engine
    finally:
        if proc is not None:
            _stop(proc)
        _unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)
        remove_forbidden_interfaces()


def _wait_for_engine(engine: DockerEngine, proc: subprocess.Popen[bytes], deadline: float) -> str | None:
    import docker

    last = "not ready"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"dockerd exited with code {proc.returncode}"
        if Path(engine.host.removeprefix("unix://")).exists():
            try:
                client = docker.DockerClient(base_url=engine.host, timeout=5)
                try:
                    client.ping()
                    return None
                finally:
                    client.close()
            except Exception as exc:  # any failure here just means "not yet"
                last = str(exc)
        time.sleep(0.1)
    return f"not ready after 30 s ({last})"


@contextlib.contextmanager
def start_docker_registry(root: Path) -> t.Iterator[DockerRegistry]:
    """``docker-registry`` on 127.0.0.1:<free port> with htpasswd (bcrypt) auth, storage under ``root``."""
    for tool in ("docker-registry", "htpasswd"):
        if shutil.which(tool) is None:
            raise EngineUnavailable(f"{tool} is not installed (.ci/install.d/50-docker.sh installs it)")
    username, password = "stepper", "reg-" + secrets.token_hex(12)
    htpasswd = subprocess.run(
        ["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(htpasswd)
    address = f"127.0.0.1:{free_port()}"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {address}\n  secret: {secrets.token_hex(16)}\n"
        f"auth:\n  htpasswd:\n    realm: stepengine-tests\n    path: {root / 'htpasswd'}\n"
    )
    log = root / "registry.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(root / "config.yml")],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with code {proc.returncode}:\n{_log_tail(log)}")
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # up, and asking for credentials
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry not ready after 20 s:\n{_log_tail(log)}")
            time.sleep(0.05)
        yield DockerRegistry(address=address, username=username, password=password, pid=proc.pid)
    finally:
        if proc is not None:
            _stop(proc, grace=5)
        remove_forbidden_interfaces()


# --------------------------------------------------------------------------- base images


#: Dockerfile lines that give a ``FROM scratch`` image a shell (``RUN`` needs ``/bin/sh``)
BUSYBOX_PRELUDE = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'


def import_python_base_image(docker_engine: DockerEngine) -> str:
    """A local image with this machine's own Python and pip, made without any network pull.

    The rootfs is assembled from the running interpreter (its binary, the shared libraries ``ldd``
    names, the standard library without tests/GUI modules, and pip, with their compiled modules) plus
    busybox-static for ``/bin/sh``, then ``docker import``-ed once per session (1.5-3 s).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    reference = f"stepengine-tests/python:{version}"
    client = docker_engine.client()
    try:
        tar_path = Path(tempfile.mkdtemp(prefix="se-rootfs-")) / "rootfs.tar"
        try:
            _write_python_rootfs(tar_path)
            repository, tag = reference.rsplit(":", 1)
            client.api.import_image_from_file(
                str(tar_path),
                repository=repository,
                tag=tag,
                changes=[
                    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                    "ENV PIP_DISABLE_PIP_VERSION_CHECK=1",
                    'CMD ["python3"]',
                ],
            )
        finally:
            shutil.rmtree(tar_path.parent, ignore_errors=True)
        client.images.get(reference)  # raises if the import did not produce it
    finally:
        client.close()
    return reference


_STDLIB_SKIP = {
    "site-packages",
    "dist-packages",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "EXTERNALLY-MANAGED",  # Debian's marker would make pip refuse to install anything
}


def _write_python_rootfs(tar_path: Path) -> None:
    executable = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    try:
        import pip
    except ModuleNotFoundError:  # e.g. a `uv venv` made without --seed
        raise EngineUnavailable(
            "the interpreter running the tests has no pip to copy into the image"
        ) from None

    pip_dir = Path(pip.__file__).resolve().parent
    pip_metadata = Path(str(importlib.metadata.distribution("pip").locate_file(""))).resolve()
    pip_metadata = next(pip_metadata.glob(f"pip-{pip.__version__}.dist-info"))
    libraries: set[str] = set()
    shared_objects = [executable, *_kept(stdlib.joinpath("lib-dynload").glob("*.so"))]
    for obj in shared_objects:
        libraries.update(_ldd(obj))

    added_dirs: set[str] = set()
    with tarfile.open(tar_path, "w") as tar:

        def add_dirs(path: str) -> None:
            parts = Path(path).parts[1:-1]
            for depth in range(1, len(parts) + 1):
                name = "/".join(parts[:depth])
                if name not in added_dirs:
                    added_dirs.add(name)
                    info = tarfile.TarInfo(name)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)

        def add_file(source: Path, target: str) -> None:
            add_dirs(target)
            info = tar.gettarinfo(str(source), arcname=target.lstrip("/"))
            if info.issym():  # store what the link points at, under the linked name
                info = tar.gettarinfo(os.path.realpath(source), arcname=target.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(source, "rb") as handle:
                tar.addfile(info, handle)

        def add_link(target: str, points_to: str) -> None:
            add_dirs(target)
            info = tarfile.TarInfo(target.lstrip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, points_to
            tar.addfile(info)

        def add_text(target: str, text: str, mode: int = 0o644) -> None:
            add_dirs(target)
            data = text.encode()
            info = tarfile.TarInfo(target.lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        def add_tree(source: Path, skip: set[str], into: Path | None = None) -> None:
            """Add ``source`` at its own path, or under ``into`` (keeping its last name)."""
            for dirpath, dirnames, filenames in os.walk(source):
                dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.startswith("config-"))
                for filename in sorted(filenames):
                    if filename in skip or not _kept([Path(filename)]):
                        continue
                    # compiled modules save the container from compiling pip and the stdlib on each run
                    if filename.endswith(".pyc") and not filename.endswith(
                        f".{sys.implementation.cache_tag}.pyc"
                    ):
                        continue
                    path = Path(dirpath) / filename
                    if path.is_file():
                        target = path if into is None else into / path.relative_to(source.parent)
                        add_file(path, str(target))

        add_file(Path(BUSYBOX), "/bin/busybox")
        applets = subprocess.run(
            [BUSYBOX, "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            if applet != "busybox":
                add_link(f"/bin/{applet}", "busybox")
        for library in sorted(libraries):
            add_file(Path(library), library)
        add_file(executable, str(executable))
        add_tree(stdlib, _STDLIB_SKIP)
        # pip goes where the image's interpreter looks: the base interpreter's site-packages, also
        # when the tests run in a venv (whose own site-packages the image does not have)
        base_purelib = Path(
            sysconfig.get_path("purelib", vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
        )
        add_tree(pip_dir, set(), into=base_purelib)
        add_tree(
            pip_metadata, set(), into=base_purelib
        )  # without its dist-info, pip does not know it is installed
        wheel_dir = _debundled_wheel_dir()
        if wheel_dir is not None:  # Debian's pip loads its dependencies from wheels in /usr/share
            add_tree(wheel_dir, set())
        for name in ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}"):
            add_link(f"/usr/local/bin/{name}", str(executable))
        add_text("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        add_text("/etc/group", "root:x:0:\n")
        for name, mode in (("tmp", 0o1777), ("root", 0o700)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            if name not in added_dirs:
                added_dirs.add(name)
                tar.addfile(info)


def _kept(paths: t.Iterable[Path]) -> list[Path]:
    """Drop the Tk extension: it would pull X11 and Tcl/Tk libraries into the image."""
    return [p for p in paths if not p.name.startswith("_tkinter")]


def _debundled_wheel_dir() -> Path | None:
    try:
        from pip import _vendor
    except ImportError:
        return None
    if getattr(_vendor, "DEBUNDLED", False) and getattr(_vendor, "WHEEL_DIR", None):
        return Path(_vendor.WHEEL_DIR)
    return None


def _ldd(path: Path) -> set[str]:
    """Absolute paths of the shared libraries (and loader) ``path`` needs."""
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    found = set()
    for line in result.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (", 1)[0].strip()
        else:
            target = line.split(" (", 1)[0].strip()
        if target.startswith("/"):
            found.add(target)
    return found
