"""``zkServer.py``: start, stop and query a pyzk server the way zkServer.sh does.

Operators and scripts know ZooKeeper through ``zkServer.sh``; this command
takes the same arguments (``[--config DIR] {start|start-foreground|stop|
restart|status|version|print-cmd} [CONFIG]``), honours the same environment
(ZOOCFGDIR, ZOOCFG, ZOOPIDFILE, ZOO_LOG_DIR, SERVER_JVMFLAGS, JVMFLAGS) and
prints the same messages, so a wrapper that parses them keeps working.

Where zkServer.sh guesses (``start`` sleeps one second and checks that the
JVM is still alive; ``stop`` sleeps one second), this waits for the real
event: the client port accepting connections, the process exiting.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pyzk import APACHE_COMPAT_VERSION, __version__
from pyzk.config import ConfigError, ServerConfig
from pyzk.config.properties import parse_jvm_flags
from pyzk.config.tls import CLIENT_PREFIX, TlsSettings, tls_settings
from pyzk.javacompat import java_trim
from pyzk.shell.configfile import load_config, read_properties

log = logging.getLogger(__name__)

USAGE = (
    "Usage: {prog} [--config <conf-dir>] "
    "{{start|start-foreground|stop|version|restart|status|print-cmd}}"
)
COMMANDS = frozenset(
    {"start", "start-foreground", "stop", "version", "restart", "status", "print-cmd"}
)
PID_FILE_NAME = "zookeeper_server.pid"
START_TIMEOUT = 30.0  # seconds `start` waits for the client port (PYZK_START_TIMEOUT)
START_GRACE = 1.0  # zkServer.sh's `sleep 1` before checking the process (PYZK_START_GRACE)
STOP_TIMEOUT = 30.0  # seconds `stop` waits for the process to exit (PYZK_STOP_TIMEOUT)
POLL_INTERVAL = 0.05
# Exit codes of Apache's QuorumPeerMain (org.apache.zookeeper.server.ExitCode).
EXIT_UNEXPECTED_ERROR = 1
EXIT_INVALID_INVOCATION = 2

LOG_FORMAT = "%(asctime)s [myid:%(myid)s] - %(levelname)-5s [%(threadName)s:%(module)s@%(lineno)d] - %(message)s"  # noqa: E501


@dataclass(slots=True)
class Invocation:
    """A parsed command line plus the environment it runs in."""

    prog: str
    command: str | None
    config_path: str
    env: Mapping[str, str]


def version_text() -> str:
    return f"pyzk {__version__} (wire-compatible with Apache ZooKeeper {APACHE_COMPAT_VERSION})"


def resolve_config_path(
    arg: str | None, confdir: str | None, env: Mapping[str, str], cwd: str | None = None
) -> str:
    """Which zoo.cfg a command uses.

    zkServer.sh takes ``$ZOOCFGDIR/$2`` unless ``$2`` has a directory part, and
    ``$ZOOCFGDIR/$ZOOCFG`` (default zoo.cfg) without ``$2``.  A ZOOCFGDIR set
    in the environment (Debian's /etc/zookeeper/conf, the official image's
    /conf) wins as it does in zkEnv.sh; without one, where zkEnv.sh would use
    the ``conf/`` beside its own script, pyzk (installed as a package, not
    unpacked) uses ``conf/<name>`` in the current directory.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    name = arg if arg else env.get("ZOOCFG") or "zoo.cfg"
    if arg and os.path.dirname(arg):
        return arg
    if confdir:
        return os.path.join(confdir, name)
    env_dir = env.get("ZOOCFGDIR")
    if env_dir and os.path.isfile(os.path.join(env_dir, name)):
        return os.path.join(env_dir, name)
    local = os.path.join("conf", name)
    if (base / local).is_file():
        return local
    if arg and (base / arg).is_file():
        return arg
    return local


def parse_args(argv: Sequence[str], env: Mapping[str, str], prog: str) -> Invocation:
    """zkEnv.sh/zkServer.sh argument handling: ``[--config DIR] CMD [CONFIG]``."""
    args = list(argv)
    confdir: str | None = None
    if len(args) > 1 and args[0] == "--config":
        confdir = args[1]
        args = args[2:]
    command = args[0] if args else None
    if command not in COMMANDS:
        command = None
    cfg_arg = args[1] if len(args) > 1 else None
    return Invocation(prog, command, resolve_config_path(cfg_arg, confdir, env), env)


def jvm_flags(env: Mapping[str, str]) -> str:
    """zkServer.sh prepends SERVER_JVMFLAGS to JVMFLAGS."""
    return " ".join(f for f in (env.get("SERVER_JVMFLAGS"), env.get("JVMFLAGS")) if f)


def data_dir_of(config_path: str) -> str:
    """dataDir as zkServer.sh finds it (it greps; a config with other errors
    still names its pid file), empty when the file or the key is missing."""
    try:
        props = read_properties(config_path)
    except (OSError, ConfigError):
        return ""
    return java_trim(props.get("dataDir", ""))


def pid_file_path(config_path: str, env: Mapping[str, str]) -> Path:
    """ZOOPIDFILE, else ``<dataDir>/zookeeper_server.pid``."""
    explicit = env.get("ZOOPIDFILE")
    if explicit:
        return Path(explicit)
    return Path(data_dir_of(config_path)) / PID_FILE_NAME


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (an exited, unreaped process counts as gone).

    An exited child of ours is detected with WNOWAIT, so its exit status stays
    for whoever owns it (subprocess.Popen.wait still sees the real code).
    """
    waitid = getattr(os, "waitid", None)  # not on macOS
    if waitid is not None:
        try:
            if waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return False
        except ChildProcessError:
            pass
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        return default


def daemon_out_path(config_path: str, env: Mapping[str, str]) -> Path:
    """Where ``start`` sends the server's stdout/stderr, named as zkServer.sh names it."""
    log_dir = env.get("ZOO_LOG_DIR") or data_dir_of(config_path) or "."
    user = env.get("USER") or "user"
    host = env.get("HOSTNAME") or socket.gethostname()
    return Path(log_dir) / f"zookeeper-{user}-server-{host}.out"


def foreground_command(config_path: str) -> list[str]:
    """The process ``start`` runs in the background."""
    return [sys.executable, "-m", "pyzk", "start-foreground", os.path.abspath(config_path)]


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for the server process: pyzk importable even from a checkout."""
    child = dict(env)
    src = str(Path(__file__).resolve().parent.parent)
    paths = [p for p in child.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src not in paths:
        child["PYTHONPATH"] = os.pathsep.join([src, *paths])
    return child


def _connect_host(address: str | None) -> str:
    if address in (None, "", "0.0.0.0"):
        return "127.0.0.1"
    if address == "::":
        return "::1"
    return address


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# commands


def cmd_start(inv: Invocation, out: TextIO, err: TextIO) -> int:
    out.write("Starting zookeeper ... ")
    out.flush()
    pid_file = pid_file_path(inv.config_path, inv.env)
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid):
        out.write(f"already running as process {pid}.\n")
        return 1
    try:
        cfg = load_config(inv.config_path, jvm_flags=jvm_flags(inv.env))
    except ConfigError as e:
        out.write("FAILED TO START\n")
        err.write(f"{e}\n")
        return 1
    port_busy = cfg.client_port is not None and _port_open(
        _connect_host(cfg.client_port_address), cfg.client_port
    )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    daemon_out = daemon_out_path(inv.config_path, inv.env)
    daemon_out.parent.mkdir(parents=True, exist_ok=True)
    with open(daemon_out, "ab") as sink:
        proc = subprocess.Popen(
            foreground_command(inv.config_path),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_child_env(inv.env),
            start_new_session=True,
        )
    try:
        pid_file.write_text(str(proc.pid))
    except OSError as e:
        out.write("FAILED TO WRITE PID\n")
        err.write(f"{pid_file}: {e.strerror}\n")
        return 1
    if _wait_started(proc, cfg, port_busy, inv.env, err):
        out.write("STARTED\n")
        return 0
    out.write("FAILED TO START\n")
    err.write(f"see {daemon_out}\n")
    pid_file.unlink(missing_ok=True)
    return 1


def _wait_started(
    proc: subprocess.Popen[bytes],
    cfg: ServerConfig,
    port_busy: bool,
    env: Mapping[str, str],
    err: TextIO,
) -> bool:
    """Wait until the server listens on its client port (True) or exits (False).

    When something else already listened on that port before the start, a
    connection proves nothing; then, like zkServer.sh, the server counts as
    started if it is still alive after a grace period (PYZK_START_GRACE).
    """
    host = _connect_host(cfg.client_port_address)
    now = time.monotonic()
    deadline = now + _env_seconds(env, "PYZK_START_TIMEOUT", START_TIMEOUT)
    grace_end = now + _env_seconds(env, "PYZK_START_GRACE", START_GRACE)
    while True:
        if proc.poll() is not None:
            return False
        if cfg.client_port is None or port_busy:
            if time.monotonic() >= grace_end:
                return True
        elif _port_open(host, cfg.client_port):
            return True
        elif time.monotonic() >= deadline:
            err.write(f"server is running but not yet listening on {host}:{cfg.client_port}\n")
            return True
        time.sleep(POLL_INTERVAL)


def cmd_stop(inv: Invocation, out: TextIO, err: TextIO) -> int:
    out.write("Stopping zookeeper ... ")
    out.flush()
    pid_file = pid_file_path(inv.config_path, inv.env)
    if not pid_file.is_file():
        out.write(f"no zookeeper to stop (could not find file {pid_file})\n")
        return 0
    pid = read_pid(pid_file)
    if pid is None:
        err.write(f"{pid_file}: no process id in the file\n")
    else:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            err.write(f"kill: ({pid}) - No such process\n")
            pid = None
    pid_file.unlink(missing_ok=True)
    if pid is not None:
        deadline = time.monotonic() + _env_seconds(inv.env, "PYZK_STOP_TIMEOUT", STOP_TIMEOUT)
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        if pid_alive(pid):
            err.write(f"process {pid} did not exit after SIGTERM\n")
    out.write("STOPPED\n")
    return 0


def cmd_restart(inv: Invocation, out: TextIO, err: TextIO) -> int:
    cmd_stop(inv, out, err)
    return cmd_start(inv, out, err)


#: What zkServer.sh prints when status could not reach a secureClientPort
#: (its ``echo " "`` lines are a single space).
SECURE_STATUS_NOTE = "".join(line + "\n" for line in (
    " ",
    "Note: We used secureClientPort ({port}) to establish connection, but we failed. The 'status'",
    "  command establishes a client connection to the server to execute diagnostic commands."
    " Please make sure you",
    "  provided all the Client SSL connection related parameters in the CLIENT_JVMFLAGS"
    " environment variable! E.g.:",
    '  CLIENT_JVMFLAGS="-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty',
    "  -Dzookeeper.ssl.trustStore.location=/tmp/clienttrust.jks"
    " -Dzookeeper.ssl.trustStore.password=password",
    "  -Dzookeeper.ssl.keyStore.location=/tmp/client.jks"
    " -Dzookeeper.ssl.keyStore.password=password",
    '  -Dzookeeper.client.secure=true" ./zkServer.sh status',
    " ",
))


def status_tls_settings(env: Mapping[str, str]) -> TlsSettings:
    """The client TLS settings zkServer.sh status gives FourLetterWordMain:
    ``-Dzookeeper.ssl.*`` from ``$CLIENT_JVMFLAGS $SERVER_JVMFLAGS $JVMFLAGS``
    (zkServer.sh folds SERVER_JVMFLAGS into JVMFLAGS; the last -D wins, as in
    the JVM). ConfigError for settings ClientX509Util would refuse."""
    flags = " ".join(f for f in (env.get("CLIENT_JVMFLAGS"), jvm_flags(env)) if f)
    return tls_settings(parse_jvm_flags(flags), CLIENT_PREFIX)


def status_context(tls: TlsSettings) -> ssl.SSLContext:
    """The client SSLContext FourLetterWordMain's ClientX509Util builds:
    the trust store (the platform's CAs without one, as the JDK's cacerts),
    the key store when one is given, and the server's name checked unless
    hostnameVerification=false. ConfigError when a store cannot be read."""
    from pyzk.shell.tlscontext import client_context

    ctx = client_context(tls)
    # OpenSSL checks the name dialled; ZKTrustManager tries the address, then
    # the name: the same for status, which dials one or the other
    ctx.check_hostname = tls.hostname_verification
    return ctx


def srvr(host: str, port: int, *, tls: ssl.SSLContext | None = None,
         timeout: float = 5.0) -> str:
    """Send the ``srvr`` four-letter word and return the whole answer ("" on
    failure), over TLS with ``tls``: FourLetterWordMain, which zkServer.sh
    status runs with ``secure`` true for a secureClientPort."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock: socket.socket = raw
            if tls is not None:
                sock = tls.wrap_socket(raw, server_hostname=host)
            sock.sendall(b"srvr")
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    except OSError:  # ssl.SSLError included: a refused handshake is "not running"
        return ""
    return b"".join(chunks).decode("utf-8", "replace")


def _grep(path: str, pattern: str) -> str:
    """``grep PATTERN FILE | sed -e 's/.*=//'`` in backquotes: each matching
    line's text after its last ``=``, joined by newlines ("" when the file
    cannot be read)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    rx = re.compile(pattern)
    return "\n".join(re.sub(r".*=", "", ln) for ln in text.splitlines() if rx.search(ln))


@dataclass(slots=True)
class StatusTarget:
    """Where zkServer.sh status sends srvr, and what it printed finding it."""

    messages: list[str]
    host: str
    port: str
    ssl: bool
    secure_port: str = ""

    @property
    def found(self) -> bool:
        """False when the script ends "Terminating." without trying a port."""
        return bool(self.port)


def status_target(config_path: str) -> StatusTarget:
    """zkServer.sh status's search for the port, grep by grep: clientPort (and
    clientPortAddress), else this server's ``server.N=...;[addr:]port`` in the
    static then the dynamic config (N from dataDir/myid), else
    secureClientPort (and secureClientPortAddress) with TLS; no port at all
    ends with "Terminating." (``found`` false)."""
    msgs: list[str] = []
    ssl_on = False
    host = _grep(config_path, r"^\s*clientPortAddress[^A-Za-z]") or "localhost"
    port = _grep(config_path, r"^\s*clientPort[^A-Za-z]")
    if not re.fullmatch(r"[0-9]+", port):
        data_dir = _grep(config_path, r"^\s*dataDir")
        try:
            myid = Path(data_dir, "myid").read_text().strip("\n")
        except OSError:
            myid = ""
        if not re.fullmatch(r"[0-9]+", myid):
            msgs.append("myid could not be determined, will not able to locate clientPort in "
                        "the server configs.")
        else:
            server_line = rf"^\s*server.{myid}=.*;.*"
            found = re.sub(r"(?m)^.*;", "", _grep(config_path, server_line))
            if not found:
                msgs.append("Client port not found in static config file. Looking in dynamic "
                            "config file.")
                dynamic = _grep(config_path, r"^\s*dynamicConfigFile")
                found = re.sub(r"(?m)^.*;", "", _grep(dynamic, server_line)) if dynamic else ""
            if not found:
                msgs.append("Client port not found in the server configs")
            else:
                if re.match(r".*:[0-9]+", found):
                    if re.search(r"\[.*\]:[0-9]+", found):
                        host = re.sub(r"(?m)\]:.*", "", found.replace("[", "", 1))
                    else:
                        host = re.sub(r"(?m):.*", "", found)
                port = re.sub(r"(?m)^.*:", "", found)
    secure = ""
    if not port:
        msgs.append("Client port not found. Looking for secureClientPort in the static config.")
        secure = _grep(config_path, r"^\s*secureClientPort[^A-Za-z]")
        if not secure:
            msgs.append("Unable to find either secure or unsecure client port in any configs. "
                        "Terminating.")
            return StatusTarget(msgs, host, "", False)
        ssl_on, port = True, secure
        host = _grep(config_path, r"^\s*secureClientPortAddress[^A-Za-z]") or "localhost"
    return StatusTarget(msgs, host, port, ssl_on, secure)


def cmd_status(inv: Invocation, out: TextIO, err: TextIO) -> int:
    """zkServer.sh status: find the port as the script does (it greps the
    file; it does not parse it), ask srvr over it, print the Mode line."""
    target = status_target(inv.config_path)
    for msg in target.messages:
        out.write(msg + "\n")
    if not target.found:
        return 1
    host, use_ssl = target.host, target.ssl
    out.write(f"Client port found: {target.port}. Client address: {host}. "
              f"Client SSL: {'true' if use_ssl else 'false'}.\n")
    try:
        port = int(target.port)
    except ValueError:
        port = -1
    answer = ""
    if not 0 <= port <= 65535:
        pass  # FourLetterWordMain cannot parse it either
    elif not use_ssl:
        answer = srvr(host, port)
    else:
        try:
            answer = srvr(host, port, tls=status_context(status_tls_settings(inv.env)))
        except ConfigError as e:
            # FourLetterWordMain fails the same way; zkServer.sh hides its stderr
            log.debug("status: no TLS client: %s", e)
    # zkServer.sh: STAT=`... | grep Mode`; echo $STAT (unquoted: words re-joined).
    stat = " ".join(" ".join(line for line in answer.splitlines() if "Mode" in line).split())
    if not stat:
        if use_ssl:
            out.write(SECURE_STATUS_NOTE.format(port=target.secure_port))
        out.write("Error contacting service. It is probably not running.\n")
        return 1
    out.write(stat + "\n")
    return 0


def cmd_version(inv: Invocation, out: TextIO, err: TextIO) -> int:
    out.write(version_text() + "\n")
    return 0


def cmd_print_cmd(inv: Invocation, out: TextIO, err: TextIO) -> int:
    argv = " ".join(f'"{a}"' for a in foreground_command(inv.config_path))
    out.write(f'{argv} > "{daemon_out_path(inv.config_path, inv.env)}" 2>&1 < /dev/null\n')
    return 0


class _ApacheFormatter(logging.Formatter):
    """log4j-style records: WARN/FATAL level names and the server's myid."""

    _LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}

    def __init__(self, myid: Callable[[], str]) -> None:
        super().__init__(LOG_FORMAT)
        self._myid = myid

    def format(self, record: logging.LogRecord) -> str:
        record.myid = self._myid()
        original = record.levelname
        record.levelname = self._LEVELS.get(original, original)
        try:
            return super().format(record)
        finally:
            record.levelname = original


def _install_log_handler(env: Mapping[str, str], myid: Callable[[], str]) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ApacheFormatter(myid))
    root = logging.getLogger()
    root.addHandler(handler)
    level_name = env.get("PYZK_LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(level_name)  # also knows log4j's WARN and FATAL
    root.setLevel(level if isinstance(level, int) else logging.INFO)
    return handler


def cmd_start_foreground(inv: Invocation, out: TextIO, err: TextIO) -> int:
    """Run the server in this process until SIGTERM/SIGINT (QuorumPeerMain.main)."""
    holder: dict[str, str] = {"myid": ""}
    handler = _install_log_handler(inv.env, lambda: holder["myid"])
    try:
        try:
            cfg = load_config(inv.config_path, jvm_flags=jvm_flags(inv.env))
        except ConfigError as e:
            log.error("Invalid config, exiting abnormally: %s", e)
            err.write("Invalid config, exiting abnormally\n")
            return EXIT_INVALID_INVOCATION
        if cfg.my_id is not None:
            holder["myid"] = str(cfg.my_id)
        try:
            server_main = importlib.import_module("pyzk.shell.main")
        except ImportError as e:
            log.error("pyzk server is not available: %s", e)
            return EXIT_UNEXPECTED_ERROR
        try:
            return int(server_main.serve(cfg))
        except ConfigError as e:
            # found only when the server opens what the config names (a TLS key store)
            log.error("Invalid config, exiting abnormally: %s", e)
            err.write("Invalid config, exiting abnormally\n")
            return EXIT_INVALID_INVOCATION
        except Exception:
            log.exception("Unexpected exception, exiting abnormally")
            return EXIT_UNEXPECTED_ERROR
    finally:
        logging.getLogger().removeHandler(handler)


_HANDLERS: dict[str, Callable[[Invocation, TextIO, TextIO], int]] = {
    "start": cmd_start,
    "start-foreground": cmd_start_foreground,
    "stop": cmd_stop,
    "restart": cmd_restart,
    "status": cmd_status,
    "version": cmd_version,
    "print-cmd": cmd_print_cmd,
}


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``zkServer.py``; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    inv = parse_args(argv, env, "zkServer.py")
    err.write(f"Using config: {inv.config_path}\n")
    if inv.command is None:
        err.write(USAGE.format(prog=inv.prog) + "\n")
        return 1
    return _HANDLERS[inv.command](inv, out, err)


def tool_main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """``pyzk``: maintenance subcommands (Apache's zkTxnLogToolkit,
    zkSnapShotToolkit and zkCleanup in one command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout if out is None else out
    if argv == ["version"]:
        out.write(version_text() + "\n")
        return 0
    if argv and argv[0] in ("txnlog", "snapshot", "purge"):
        from pyzk.shell import datatools as tools

        run = {"txnlog": tools.main_txnlog, "snapshot": tools.main_snapshot,
               "purge": tools.main_purge}[argv[0]]
        return run(argv[1:], out)
    sys.stderr.write(
        "Usage: pyzk version\n"
        "       pyzk txnlog [-d] [-r [-v] [-y]] [-c -z ZXID] [--check] FILE\n"
        "       pyzk snapshot [-d|-json] FILE\n"
        "       pyzk purge dataLogDir [snapDir] -n count\n")
    return 1
