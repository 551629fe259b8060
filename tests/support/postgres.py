"""`ThrowawayPostgres`: a private PostgreSQL cluster in a temporary directory, for one test session.

It needs only the server binaries (``initdb``, ``pg_ctl``, ``createdb``; on PATH or in
Debian's ``/usr/lib/postgresql/<version>/bin``) and the standard library. The cluster trusts
every local connection, listens on a free loopback port, runs with ``fsync=off`` (fast, and
its data is worthless), and is stopped with ``-m immediate`` and deleted at the end. PostgreSQL
refuses to run as root; as root the cluster runs as the ``postgres`` OS user (created as a
system user if missing), owning the temporary directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresBinariesMissing", "ThrowawayPostgres", "find_postgres_bin_dir"]

_TOOLS = ("initdb", "pg_ctl", "createdb")
_SERVICE_USER = "postgres"


class PostgresBinariesMissing(RuntimeError):
    """``initdb``/``pg_ctl`` are not on this machine."""


def find_postgres_bin_dir() -> Path:
    """The directory holding the server binaries, the newest version first.

    Raises:
        PostgresBinariesMissing: Neither PATH nor ``/usr/lib/postgresql/*/bin`` has them.
    """
    # initdb on PATH is often a symlink into the versioned directory that has the rest.
    on_path = shutil.which("initdb")
    candidates = [os.path.dirname(os.path.realpath(on_path))] if on_path else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for directory in candidates:
        if all(os.access(os.path.join(directory, tool), os.X_OK) for tool in _TOOLS):
            return Path(directory)
    raise PostgresBinariesMissing(
        "PostgreSQL server binaries (initdb, pg_ctl) are neither on PATH nor in "
        "/usr/lib/postgresql/*/bin: install your distribution's 'postgresql' package"
    )


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster that lives as long as this object is entered.

    Use as ``with ThrowawayPostgres() as cluster: cluster.dsn(...)``.
    """

    bin_dir: Path = field(default_factory=find_postgres_bin_dir)
    port: int = 0
    """The port it listens on, on 127.0.0.1 (picked when started)."""
    _root: Path | None = field(default=None, init=False, repr=False)
    _user: pwd.struct_passwd | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def dsn(self, dbname: str = "postgres") -> str:
        """A connection URL for database `dbname`, as superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Create the cluster and start the server; wait until it accepts connections."""
        self._root = Path(tempfile.mkdtemp(prefix="spanflow-pg-"))
        self._user = _service_user() if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(self._root, self._user.pw_uid, self._user.pw_gid)
        try:
            self._run(
                "initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync",
                "-E", "UTF8", "--locale=C",
            )  # fmt: skip
            self._start_server()
        except BaseException:
            self.stop()
            raise

    def create_database(self, name: str) -> str:
        """Create database `name` (from ``template0``) and return its DSN."""
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-T", "template0", name,
        )  # fmt: skip
        return self.dsn(name)

    def pause(self) -> None:
        """Stop the server, keeping the cluster (an outage: `resume` ends it). A fast shutdown:
        it drops every connection but writes out what was committed, which an immediate one
        would lose with this cluster's ``synchronous_commit=off``."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the paused server again, on the same port."""
        self._start_server(port=self.port)

    def stop(self) -> None:
        """Stop the server at once and delete the cluster. Safe to call twice."""
        root, self._root = self._root, None
        if root is None:
            return
        try:
            if (root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    @property
    def _data(self) -> Path:
        assert self._root is not None, "the cluster is not started"
        return self._root / "data"

    def _start_server(self, port: int | None = None) -> None:
        # A port picked free can be taken before the server binds it: try a few.
        for attempt in range(3):
            self.port = port or _free_port()
            options = (
                f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            log = self._data.parent / "server.log"
            try:
                self._run(
                    "pg_ctl", "-D", str(self._data), "-l", str(log), "-o", options,
                    "-w", "-t", "60", "start",
                )  # fmt: skip
                return
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise RuntimeError(
                        f"PostgreSQL did not start; its log says:\n{_tail(log)}"
                    ) from None

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        user = self._user
        env = {**os.environ, "LC_ALL": "C"}
        if user is not None:
            env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                cwd=self._root,
                env=env,
                # As root, run as the service user (this command only; we stay root).
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
                timeout=120,
            )
        except subprocess.CalledProcessError as err:
            err.add_note(f"{' '.join(command)} said:\n{err.stdout}{err.stderr}")
            raise


def _service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             _SERVICE_USER],
            check=True, capture_output=True,
        )  # fmt: skip
        return pwd.getpwnam(_SERVICE_USER)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _version_key(directory: str) -> tuple[int, ...]:
    version = Path(directory).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
