"""The lab's team server on one machine (``make team-server``, ``make team-server-stop``; docs/lab.md,
"Sharing"): a PostgreSQL cluster from the distribution's packages as MLflow's backend store (and
the basic-auth app's user store), ``mlflow server --app-name basic-auth`` on 127.0.0.1, artifacts
proxied by the server into a folder, an admin whose password is generated, and ``.team/env``,
the ``export`` lines a user sources to log there.

Everything lives in ``<project>/.team/`` (git-ignored): ``db/`` the cluster, ``artifacts/``,
``secrets.json`` (the database, admin and Flask secrets; mode 600), ``pgpass`` (libpq reads the
database password from it, so no password is on a command line), ``basic_auth.ini``, the logs
``db.log`` and ``server.log``, ``server.pid`` and ``env``. Starting is idempotent (what runs is
kept, what does not is started); PostgreSQL refuses to run as root, so as root its commands run as
the ``postgres`` user the Debian package makes.

This module talks to the server over HTTP (urllib) and starts it as a process: it imports no
MLflow (``pipeline/tracking.py`` is the only module that does).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from neurolatent.errors import NeurolatentError

#: the folder in the project root that holds the server's state
TEAM = ".team"
ADMIN = "admin"
#: the database role that owns the cluster and MLflow's two databases
DB_USER = "mlflow"
DATABASES = ("mlflow", "mlflow_auth")
#: seconds the MLflow server may take to answer /health (its first start migrates an empty database)
START_S = 180


def _fail(message: str) -> None:
    raise NeurolatentError(message)


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (``initdb``, ``pg_ctl``): on PATH, else the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian's packages keep them off PATH)."""
    found = shutil.which("pg_ctl")
    if found and Path(found).with_name("initdb").exists():
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        _fail("PostgreSQL is not installed (no pg_ctl on PATH or in /usr/lib/postgresql/*/bin): "
              "apt-get install postgresql")
    return Path(versions[-1]).parent


def port_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be listened on now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def runuser() -> str | None:
    """util-linux's ``runuser``: on PATH, else in the sbin folders a root shell has on PATH and a
    plain or ``env -i`` one may not; None when missing."""
    return shutil.which("runuser", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def _as_db_user(cmd: list[str]) -> list[str]:
    """``cmd`` as the ``postgres`` user when run as root (PostgreSQL refuses root), else as is."""
    if os.geteuid() != 0:
        return cmd
    found = runuser()
    if found is None:
        _fail("runuser (util-linux) is not installed: as root PostgreSQL's commands run as the postgres user through it")
    return [found, "-u", "postgres", "--", *cmd]


def _own(path: Path) -> None:
    """Give ``path`` to the ``postgres`` user when run as root (its cluster and password file)."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner alone, whole or not at all."""
    part = path.with_name(path.name + ".part")
    part.unlink(missing_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    part.replace(path)


def _secrets(team: Path) -> dict[str, str]:
    """The server's secrets, generated on first use and kept in ``secrets.json`` (mode 600)."""
    path = team / "secrets.json"
    if path.is_file():
        return json.loads(path.read_text())
    values = {name: secrets.token_urlsafe(24) for name in ("db_password", "admin_password", "flask_secret_key")}
    _write_private(path, json.dumps(values, indent=1) + "\n")
    return values


def _run(cmd: list[str], what: str, env: dict | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        _fail(f"{what} failed: {lines[-1] if lines else f'exit status {result.returncode}'}")
    return result.stdout


# ----------------------------------------------------------------------------- PostgreSQL


def _db_running(team: Path, bin_dir: Path) -> bool:
    if not (team / "db" / "PG_VERSION").is_file():
        return False
    return subprocess.run(_as_db_user([str(bin_dir / "pg_ctl"), "status", "-D", str(team / "db")]),
                          capture_output=True, stdin=subprocess.DEVNULL).returncode == 0


def _init_db(team: Path, bin_dir: Path, password: str) -> None:
    """A new cluster in ``db/`` owned by role ``mlflow`` (password auth only), made in ``db.new`` and
    renamed when complete, so a failed initdb leaves no half cluster for the next start."""
    new = team / "db.new"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(mode=0o700)
    _own(new)
    pwfile = team / "db.pw"
    _write_private(pwfile, password + "\n")
    _own(pwfile)
    try:
        _run(_as_db_user([str(bin_dir / "initdb"), "-D", str(new), "-U", DB_USER, f"--pwfile={pwfile}",
                          "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions"]), "initdb")
    except NeurolatentError:
        shutil.rmtree(new, ignore_errors=True)
        raise
    finally:
        pwfile.unlink(missing_ok=True)
    new.rename(team / "db")


def _start_db(team: Path, bin_dir: Path, port: int) -> None:
    log = team / "db.log"
    log.touch()
    _own(log)
    # TCP on 127.0.0.1 alone, no Unix socket (its folder would be the system's, /var/run/postgresql)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
    result = subprocess.run(_as_db_user([str(bin_dir / "pg_ctl"), "start", "-D", str(team / "db"), "-l", str(log),
                                         "-w", "-t", "60", "-o", options]),
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        _fail(f"PostgreSQL did not start on 127.0.0.1:{port}: {lines[-1] if lines else result.stderr.strip()} "
              f"(see {log})")


def _create_databases(db_port: int, pgpass: Path) -> None:
    """MLflow's tracking database and the basic-auth app's user database, where missing."""
    try:
        import psycopg2
    except ImportError:
        _fail("psycopg2 is not installed (the team server's database driver): pip install -e '.[dev]'")
    try:
        connection = psycopg2.connect(host="127.0.0.1", port=db_port, user=DB_USER, dbname="postgres",
                                      passfile=str(pgpass))
    except psycopg2.Error as exc:
        _fail(f"PostgreSQL on 127.0.0.1:{db_port} refused role {DB_USER}: {str(exc).strip().splitlines()[0]}")
    connection.autocommit = True  # CREATE DATABASE runs outside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            present = {row[0] for row in cursor.fetchall()}
            for name in DATABASES:
                if name not in present:
                    cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


# ----------------------------------------------------------------------------- the MLflow server


def _server_pid(team: Path) -> int | None:
    """The MLflow server's process (group) id when it is alive, else None (a stale pid file removed)."""
    path = team / "server.pid"
    if not path.is_file():
        return None
    pid = int(path.read_text().split()[0])
    if not _group_alive(pid):
        path.unlink(missing_ok=True)
        return None
    return pid


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. A killed server whose parent (``team start``)
    has exited is an orphan, and an init that never reaps (a container's, a CI VM's) leaves it a
    zombie, which ``killpg(pgid, 0)`` still finds: so the processes' states are read."""
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == pgid:
                return True
    return False


def request(url: str, user: str | None = None, password: str | None = None, method: str = "GET",
            body: dict | None = None) -> tuple[int, dict]:
    """One HTTP request to the server, with basic auth when ``user`` is given; (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    try:
        return status, json.loads(text or b"{}")
    except ValueError:
        return status, {"text": text.decode(errors="replace")[:200]}


def _wait_healthy(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
            _fail(f"mlflow server exited ({process.returncode}): {lines[-1] if lines else 'no output'} (see {log})")
        with contextlib.suppress(OSError):
            if urllib.request.urlopen(base + "/health", timeout=2).status == 200:
                return
        time.sleep(0.5)
    _stop_server(process.pid)
    (log.parent / "server.pid").unlink(missing_ok=True)
    _fail(f"mlflow server did not answer {base}/health within {START_S} s (see {log})")


def _auth_ini(team: Path, db_port: int) -> Path:
    """The basic-auth app's configuration: users in PostgreSQL, no access without a grant."""
    path = team / "basic_auth.ini"
    path.write_text("[mlflow]\n"
                    "# a user reads or changes an experiment only where granted (an admin grants it)\n"
                    "default_permission = NO_PERMISSIONS\n"
                    f"database_uri = postgresql+psycopg2://{DB_USER}@127.0.0.1:{db_port}/mlflow_auth\n"
                    f"admin_username = {ADMIN}\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    return path


def _start_server(team: Path, port: int, db_port: int, values: dict[str, str], workers: int) -> None:
    artifacts = team / "artifacts"
    artifacts.mkdir(mode=0o700, exist_ok=True)  # the server's alone: no one reads them past the login
    log = team / "server.log"
    env = {**os.environ, "PGPASSFILE": str(team / "pgpass"), "MLFLOW_AUTH_CONFIG_PATH": str(_auth_ini(team, db_port)),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": values["flask_secret_key"],
           # read on the first start only, when the admin is created (rotate: update-password)
           "MLFLOW_AUTH_ADMIN_PASSWORD": values["admin_password"],
           # MLflow 3's job runner (GenAI scorers, prompt optimisation: nothing this pipeline uses)
           # would start eight more processes on the lab's machine
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--app-name", "basic-auth",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--backend-store-uri", f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{db_port}/mlflow",
           "--serve-artifacts", "--artifacts-destination", str(artifacts),
           # a client's idle keep-alive connection would otherwise hold a stop for its full wait
           "--uvicorn-opts", "--timeout-graceful-shutdown 5"]
    with open(log, "ab") as out:
        # a session of its own: stop (and a test's SIGKILL) reaches its workers as one group
        process = subprocess.Popen(cmd, cwd=team, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    (team / "server.pid").write_text(f"{process.pid}\n")
    base = f"http://127.0.0.1:{port}"
    _wait_healthy(base, process, log)
    status, body = request(f"{base}/api/2.0/mlflow/users/current", ADMIN, values["admin_password"])
    if status != 200:
        _stop_server(process.pid)
        _fail(f"mlflow server {base} refused the admin's password from {team / 'secrets.json'} ({status}): "
              f"was the admin password rotated by hand?")


def _stop_server(pid: int) -> None:
    """SIGTERM to the server's process group, SIGKILL after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _group_alive(pid):
                return
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)


def write_env(team: Path, port: int, password: str) -> Path:
    """``.team/env``: the lines a user sources to log to the server as the admin (mode 600)."""
    path = team / "env"
    _write_private(path, "# . .team/env   (made by make team-server; holds the admin's password)\n"
                         f"export MLFLOW_TRACKING_URI=http://127.0.0.1:{port}\n"
                         f"export MLFLOW_TRACKING_USERNAME={ADMIN}\n"
                         f"export MLFLOW_TRACKING_PASSWORD={password}\n")
    return path


# ----------------------------------------------------------------------------- commands


def start(root: Path, port: int, db_port: int, workers: int = 1) -> str:
    """Start what is not running of the team server in ``root/.team``; its one-line summary."""
    team = Path(root).resolve() / TEAM
    bin_dir = postgres_bin()
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _fail("PostgreSQL's 'postgres' user is missing (it runs the cluster when started as root): "
                  "apt-get install postgresql")
    db_up = _db_running(team, bin_dir)
    server_up = _server_pid(team) is not None
    for name, wanted, up, variable in (("MLflow", port, server_up, "TEAM_PORT"),
                                       ("PostgreSQL", db_port, db_up, "TEAM_DB_PORT")):
        if not up and not port_free(wanted):
            _fail(f"port {wanted} on 127.0.0.1 is taken by another process, so {name} cannot listen there: "
                  f"free it, or choose another (make team-server {variable}=...)")
    if subprocess.run(_as_db_user(["test", "-x", str(team.parent)]), stdin=subprocess.DEVNULL).returncode != 0:
        _fail(f"{team.parent}: the postgres user cannot reach it (a folder above it is private to its owner): "
              "put the project where it can, or run make team-server as a user other than root")
    team.mkdir(exist_ok=True)
    team.chmod(0o711)  # the postgres user (as root) reaches db/ through it; nothing in it is world-readable
    values = _secrets(team)
    _write_private(team / "pgpass", f"127.0.0.1:*:*:{DB_USER}:{values['db_password']}\n")
    _own(team / "pgpass")  # libpq ignores a password file that others can read
    if not db_up:
        if not (team / "db" / "PG_VERSION").is_file():
            _init_db(team, bin_dir, values["db_password"])
        _start_db(team, bin_dir, db_port)
    _create_databases(db_port, team / "pgpass")
    if not server_up:
        _start_server(team, port, db_port, values, workers)
    write_env(team, port, values["admin_password"])
    state = "already running" if server_up and db_up else "started"
    return (f"team server {state}: MLflow http://127.0.0.1:{port} (basic auth, admin '{ADMIN}'), PostgreSQL "
            f"127.0.0.1:{db_port}, artifacts in {team / 'artifacts'}; `. {TEAM}/env` to log there")


def stop(root: Path) -> str:
    """Stop the MLflow server and the PostgreSQL cluster of ``root/.team``; its one-line summary."""
    team = Path(root).resolve() / TEAM
    stopped = []
    pid = _server_pid(team)
    if pid is not None:
        _stop_server(pid)
        (team / "server.pid").unlink(missing_ok=True)
        stopped.append("MLflow")
    if (team / "db" / "PG_VERSION").is_file():
        bin_dir = postgres_bin()
        if _db_running(team, bin_dir):
            _run(_as_db_user([str(bin_dir / "pg_ctl"), "stop", "-D", str(team / "db"), "-m", "fast", "-w"]),
                 "pg_ctl stop")
            stopped.append("PostgreSQL")
    return f"team server: stopped {' and '.join(stopped)}" if stopped else "team server: not running"


def rotate(root: Path) -> str:
    """Give the admin a new generated password (through the auth API), kept in secrets.json and env."""
    team = Path(root).resolve() / TEAM
    if _server_pid(team) is None:
        _fail(f"team server in {team} is not running: make team-server first")
    values = _secrets(team)
    uri = next(line.split("=", 1)[1] for line in (team / "env").read_text().splitlines()
               if line.startswith("export MLFLOW_TRACKING_URI="))
    port = int(uri.rsplit(":", 1)[1])
    new = secrets.token_urlsafe(24)
    status, body = request(f"http://127.0.0.1:{port}/api/2.0/mlflow/users/update-password", ADMIN,
                           values["admin_password"], "PATCH",
                           {"username": ADMIN, "password": new, "current_password": values["admin_password"]})
    if status != 200:
        _fail(f"mlflow server http://127.0.0.1:{port} refused the new password ({status}): {body}")
    _write_private(team / "secrets.json", json.dumps({**values, "admin_password": new}, indent=1) + "\n")
    write_env(team, port, new)
    return f"team server: the admin's password is new (in {TEAM}/env); users source it again"


def main(argv: list[str] | None = None) -> int:
    """``python -m neurolatent.pipeline.team start|stop|rotate``: 0, or 1 with one line on stderr."""
    parser = argparse.ArgumentParser(prog="team-server", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("start", "stop", "rotate"))
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project (default: here)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("TEAM_PORT") or 5000),
                        help="MLflow's port on 127.0.0.1 (TEAM_PORT, default 5000)")
    parser.add_argument("--db-port", type=int, default=int(os.environ.get("TEAM_DB_PORT") or 5433),
                        help="PostgreSQL's port on 127.0.0.1 (TEAM_DB_PORT, default 5433)")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            line = start(args.root, args.port, args.db_port)
        elif args.command == "stop":
            line = stop(args.root)
        else:
            line = rotate(args.root)
    except (NeurolatentError, OSError) as exc:
        print(f"team-server {args.command}: error: {exc}", file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
