"""A lab's shared setup run for real (docs/lab.md): the team MLflow server that `make
team-server` starts (PostgreSQL from the distribution's packages, the basic-auth app, proxied
artifacts) logs `dvc repro` and `dvc queue start -j 2`, keeps out whoever has no credentials or
only read access, and loses no run when it is killed during a stage; a DVC remote over SSH to a
real sshd on 127.0.0.1 (a user of its own, key auth) carries every output to a fresh clone.

Needs PostgreSQL's and OpenSSH's server packages (``make test`` installs them as root on Debian);
the SSH remote also needs root (it adds a user and runs sshd). Skipped with the reason elsewhere.
The project lives in a folder of /tmp that the ``postgres`` user can reach (pytest's own is private
to root), removed after.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from neurolatent.pipeline import team
from neurolatent.pipeline.team import request
from projects import BIN, failing, lineage, make_project, out_hashes, output_files, run, user_files

POSTGRES = shutil.which("initdb") or next(iter(glob.glob("/usr/lib/postgresql/*/bin/initdb")), None)
SSHD = "/usr/sbin/sshd"
#: user administration lives in the sbin folders, which a plain or `env -i` root shell may not have on PATH
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
#: the SSH remote's own user
REMOTE_USER = "neurolatent-dvc"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(POSTGRES is None, reason="PostgreSQL is not installed (apt-get install postgresql)"),
              pytest.mark.skipif(os.geteuid() == 0 and team.runuser() is None, reason="no runuser")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _team(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurolatent.pipeline.team", *args], cwd=project,
                          capture_output=True, text=True)


def _env_file(project: Path) -> dict[str, str]:
    lines = (project / ".team" / "env").read_text().splitlines()
    return dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))


@pytest.fixture(scope="module")
def lab():
    """The project with its team server started (free ports), and the server's login in the
    environment of this module's commands (as `. .team/env` does); stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="neurolatent-lab-"))
    folder.chmod(0o755)
    project = make_project(folder / "project")
    port, db_port = _free_port(), _free_port()
    import mlflow

    with pytest.MonkeyPatch.context() as patch:
        try:
            started = _team(project, "start", "--port", str(port), "--db-port", str(db_port))
            assert started.returncode == 0, started.stderr
            env = _env_file(project)
            for key, value in env.items():
                patch.setenv(key, value)
            mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])  # over any store an earlier test named
            yield SimpleNamespace(project=project, port=port, db_port=db_port, url=env["MLFLOW_TRACKING_URI"],
                                  password=env["MLFLOW_TRACKING_PASSWORD"], started=started.stdout)
        finally:
            mlflow.set_tracking_uri(None)
            _team(project, "stop")
            shutil.rmtree(folder, ignore_errors=True)


def _runs(lab, experiment: str = "neurolatent") -> dict:
    """{run id: run} of the experiment, read through the server as the admin."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=lab.url)
    found = client.get_experiment_by_name(experiment)
    return {r.info.run_id: r for r in client.search_runs([found.experiment_id], max_results=5000)} if found else {}


def test_the_server_starts_once_with_a_generated_admin_password_and_refuses_anyone_without_one(lab):
    assert "team server started" in lab.started
    again = _team(lab.project, "start", "--port", str(lab.port), "--db-port", str(lab.db_port))
    assert again.returncode == 0 and "already running" in again.stdout, again.stderr
    env = lab.project / ".team" / "env"
    assert env.stat().st_mode & 0o077 == 0 and (lab.project / ".team" / "secrets.json").stat().st_mode & 0o077 == 0
    assert len(lab.password) >= 12 and lab.password != "password1234"
    pid = int((lab.project / ".team" / "server.pid").read_text())
    assert lab.password not in Path(f"/proc/{pid}/cmdline").read_text()  # not on a command line (ps)
    assert ".team" not in run(["git", "status", "--porcelain", "--ignored=no"], lab.project)  # git ignores it
    search = f"{lab.url}/api/2.0/mlflow/experiments/search?max_results=10"
    refused = [request(search)[0], request(search, "admin", "password1234")[0], request(search, "admin", "")[0],
               request(f"{lab.url}/api/2.0/mlflow/experiments/create", method="POST", body={"name": "x"})[0],
               request(f"{lab.url}/api/2.0/mlflow/users/create", method="POST",
                       body={"username": "mallory", "password": "a" * 16})[0],
               request(f"{lab.url}/api/2.0/mlflow-artifacts/artifacts")[0]]
    assert refused == [401] * 6
    assert request(search, "admin", lab.password)[0] == 200
    # a stage with a wrong password: one line naming the server and what to set
    from neurolatent.errors import NeurolatentError
    from neurolatent.pipeline.tracking import stage_run

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(lab.project)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
        with pytest.raises(NeurolatentError, match=rf"^MLflow tracking server {lab.url} refused the credentials of "
                                                   r"'admin' \(401\): set MLFLOW_TRACKING_USERNAME"):
            with stage_run("trials", {}):
                pass
    # a port taken by another process: one line naming it, nothing started
    other = lab.project.parent / "other"
    other.mkdir()
    taken = subprocess.run([sys.executable, "-m", "neurolatent.pipeline.team", "start", "--port", str(lab.port),
                            "--db-port", str(_free_port()), "--root", str(other)], capture_output=True, text=True)
    assert taken.returncode == 1 and taken.stderr.count("\n") == 1 and f"port {lab.port}" in taken.stderr, taken.stderr
    assert not (other / ".team").exists()


def test_dvc_repro_logs_every_stage_run_with_its_parent_and_lineage(lab):
    run(["dvc", "repro", "trials"], lab.project)
    parent, children = lineage(lab.project, out_hashes(lab.project), {"dataset", "trials"})
    raw = children["dataset"].data.tags["dvc.out.data/raw/bold5000"]
    assert children["trials"].data.tags["dvc.in.data/raw/bold5000"] == raw
    assert all(r.info.status == "FINISHED" for r in children.values())
    # artifacts go through the server into .team/artifacts (the client never sees the folder)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=lab.url)
    client.log_text(children["trials"].info.run_id, "the lab's note\n", "note.txt")
    assert children["trials"].info.artifact_uri.startswith("mlflow-artifacts:")
    stored = list((lab.project / ".team" / "artifacts").rglob("note.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "the lab's note\n"


def test_a_read_only_user_reads_but_cannot_change_or_delete(lab):
    admin = ("admin", lab.password)
    api = f"{lab.url}/api/2.0/mlflow"
    experiment = request(f"{api}/experiments/get-by-name?experiment_name=neurolatent", *admin)[1]["experiment"]
    run_id = next(r.info.run_id for r in _runs(lab).values() if r.info.run_name == "trials")
    for user in ("reader", "stranger"):
        assert request(f"{api}/users/create", *admin, "POST", {"username": user, "password": f"{user}-password-1"})[0] == 200
    granted = request(f"{lab.url}/api/3.0/mlflow/users/permissions/grant", *admin, "POST",
                      {"username": "reader", "resource_type": "experiment",
                       "resource_id": experiment["experiment_id"], "permission": "READ"})
    assert granted[0] == 200, granted
    reader = ("reader", "reader-password-1")
    note = (f"{lab.url}/api/2.0/mlflow-artifacts/artifacts/{experiment['experiment_id']}/{run_id}/artifacts/note.txt")
    reads = {"get run": request(f"{api}/runs/get?run_id={run_id}", *reader),
             "search runs": request(f"{api}/runs/search", *reader, "POST",
                                    {"experiment_ids": [experiment["experiment_id"]]}),
             "get experiment": request(f"{api}/experiments/get?experiment_id={experiment['experiment_id']}", *reader),
             "download artifact": request(note, *reader)}
    assert {name: status for name, (status, _) in reads.items()} == dict.fromkeys(reads, 200)
    assert reads["get run"][1]["run"]["info"]["run_name"] == "trials"
    assert len(reads["search runs"][1]["runs"]) >= 3
    changes = {"set tag": ("runs/set-tag", {"run_id": run_id, "key": "x", "value": "y"}),
               "log metric": ("runs/log-metric", {"run_id": run_id, "key": "x", "value": 1, "timestamp": 0}),
               "end run": ("runs/update", {"run_id": run_id, "status": "FAILED"}),
               "delete run": ("runs/delete", {"run_id": run_id}),
               "new run": ("runs/create", {"experiment_id": experiment["experiment_id"]}),
               "rename experiment": ("experiments/update", {"experiment_id": experiment["experiment_id"], "new_name": "x"}),
               "delete experiment": ("experiments/delete", {"experiment_id": experiment["experiment_id"]})}
    refused = {name: request(f"{api}/{path}", *reader, "POST", body)[0] for name, (path, body) in changes.items()}
    refused["delete artifact"] = request(note, *reader, "DELETE")[0]
    refused["grant itself EDIT"] = request(f"{lab.url}/api/3.0/mlflow/users/permissions/grant", *reader, "POST",
                                           {"username": "reader", "resource_type": "experiment",
                                            "resource_id": experiment["experiment_id"], "permission": "EDIT"})[0]
    refused["make a user"] = request(f"{api}/users/create", *reader, "POST", {"username": "x", "password": "x" * 16})[0]
    refused["stranger reads"] = request(f"{api}/runs/get?run_id={run_id}", "stranger", "stranger-password-1")[0]
    assert refused == dict.fromkeys(refused, 403)
    after = request(f"{api}/runs/get?run_id={run_id}", *admin)[1]["run"]
    assert after["info"]["lifecycle_stage"] == "active" and after["info"]["status"] == "FINISHED"
    assert "x" not in {item["key"] for kind in ("tags", "metrics") for item in after["data"].get(kind, [])}
    assert request(note, *admin)[0] == 200


def _wait_for_queue(project: Path) -> str:
    deadline = time.time() + 900
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], project)
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(3)
    pytest.fail(f"the queue did not finish in 900 s:\n{status}")


def test_two_queued_experiments_run_in_parallel_and_log_every_stage_run(lab):
    names = {"snr2": 2.0, "snr05": 0.5}  # the dataset (so trials) differs from the project's and each other's
    before = set(_runs(lab))
    for name, snr in names.items():
        run(["dvc", "exp", "run", "--queue", "-n", name, "-S", f"data.synthetic.snr={snr}", "trials"], lab.project)
    run(["dvc", "queue", "start", "-j", "2"], lab.project)
    status = _wait_for_queue(lab.project)
    assert "Failed" not in status, status
    new = [r for r in _runs(lab).values() if r.info.run_id not in before]
    raw = {}
    for name in names:
        parents = [r for r in new if r.info.run_name == name and r.data.tags.get("neurolatent.role") == "pipeline"]
        assert len(parents) == 1 and parents[0].info.status == "FINISHED", name
        stages = {r.data.tags["neurolatent.stage"]: r for r in new
                  if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
        assert set(stages) == {"dataset", "trials"} and all(r.info.status == "FINISHED" for r in stages.values())
        assert all(r.data.tags["dvc.exp_name"] == name for r in stages.values())
        raw[name] = stages["dataset"].data.tags["dvc.out.data/raw/bold5000"]
        assert stages["trials"].data.tags["dvc.in.data/raw/bold5000"] == raw[name]
        assert any(key.startswith("trials.") for key in stages["trials"].data.metrics)
    assert len(set(raw.values())) == 2 and out_hashes(lab.project)["data/raw/bold5000"] not in raw.values()
    assert len(new) == 6  # two pipeline runs, four stage runs


def test_the_server_killed_during_a_stage_fails_it_in_one_line_and_loses_no_run(lab, monkeypatch):
    # MLflow's client retries a server that does not answer for minutes (7 retries, backoff 2):
    # made short here, so the stage gives up while the server is down
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    before_files = user_files(lab.project)
    before = {run_id: r.info.status for run_id, r in _runs(lab).items()}
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    repro = subprocess.Popen(["dvc", "repro", "-f", "-s", "dataset"], cwd=lab.project, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline, killed = time.time() + 300, None
    while killed is None and time.time() < deadline and repro.poll() is None:
        running = [r for run_id, r in _runs(lab).items() if run_id not in before and r.info.run_name == "dataset"]
        if running:
            assert running[0].info.status == "RUNNING"
            os.killpg(int((lab.project / ".team" / "server.pid").read_text()), signal.SIGKILL)
            killed = running[0].info.run_id
        else:
            time.sleep(0.2)
    output = repro.communicate(timeout=600)[0]
    assert killed and repro.returncode != 0, output
    ours = [line for line in output.splitlines() if line.startswith("neurolatent dataset")]
    assert len(ours) == 1 and f"MLflow tracking server {lab.url} did not answer" in ours[0], output
    assert "Traceback" not in output
    # nothing half-written: dvc.lock and every output as they were (or absent, as DVC removed it)
    after_files = user_files(lab.project)
    assert after_files["dvc.lock"] == before_files["dvc.lock"]
    assert all(before_files[path] == digest for path, digest in after_files.items())
    restarted = _team(lab.project, "start", "--port", str(lab.port), "--db-port", str(lab.db_port))
    assert restarted.returncode == 0 and "started" in restarted.stdout, restarted.stderr
    survived = _runs(lab)
    assert {run_id: survived[run_id].info.status for run_id in before} == before  # every run kept, as it was
    assert survived[killed].info.status == "RUNNING"  # the killed stage's run: its end was never heard
    run(["dvc", "repro", "-f", "-s", "dataset"], lab.project)
    assert user_files(lab.project) == before_files
    rerun = [r for run_id, r in _runs(lab).items() if run_id not in survived]
    assert [r.info.run_name for r in rerun if r.data.tags.get("neurolatent.stage")] == ["dataset"]
    assert all(r.info.status == "FINISHED" for r in rerun)
    hashes = out_hashes(lab.project)
    assert all(hashes[key.removeprefix("dvc.out.")] == value
               for r in rerun for key, value in r.data.tags.items() if key.startswith("dvc.out."))


# ----------------------------------------------------------------------------- DVC remote over SSH


@pytest.fixture
def sshd(tmp_path):
    """sshd on 127.0.0.1 (a free port, host key and config of its own), letting in only the user
    ``neurolatent-dvc`` (made for it, removed after) with the key it returns; (port, key, wrong key)."""
    if os.geteuid() != 0 or not os.access(SSHD, os.X_OK):
        pytest.skip("the SSH remote needs root and OpenSSH's server (apt-get install openssh-server)")
    subprocess.run([shutil.which("userdel", path=SBIN) or "userdel", "-r", REMOTE_USER], capture_output=True)
    # a password that matches nothing, but not a locked account, which sshd would refuse even a key
    subprocess.run([shutil.which("useradd", path=SBIN) or "useradd", "--create-home", "--shell", "/bin/sh",
                    "--password", "*", REMOTE_USER], check=True)
    home = Path(f"/home/{REMOTE_USER}")
    for name in ("key", "wrong", "host"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    (home / ".ssh").mkdir(mode=0o700)
    shutil.copy(tmp_path / "key.pub", home / ".ssh" / "authorized_keys")
    subprocess.run(["chown", "-R", f"{REMOTE_USER}:", str(home / ".ssh")], check=True)
    port = _free_port()
    config = tmp_path / "sshd_config"
    config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path / 'host'}\nPidFile {tmp_path / 'pid'}\n"
                      f"AllowUsers {REMOTE_USER}\nPermitRootLogin no\nPasswordAuthentication no\n"
                      "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n"
                      "AuthorizedKeysFile .ssh/authorized_keys\nSubsystem sftp internal-sftp\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation folder
    server = subprocess.Popen([SSHD, "-D", "-E", str(tmp_path / "sshd.log"), "-f", str(config)])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        else:
            pytest.fail("sshd did not listen within 10 s")
        yield port, tmp_path / "key", tmp_path / "wrong"
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run([shutil.which("userdel", path=SBIN) or "userdel", "-r", REMOTE_USER], capture_output=True)


def test_outputs_travel_through_an_ssh_remote_and_a_wrong_key_is_refused(lab, sshd, tmp_path):
    port, key, wrong = sshd
    project = lab.project
    run(["dvc", "remote", "add", "lab", f"ssh://{REMOTE_USER}@127.0.0.1:{port}/home/{REMOTE_USER}/dvc-store"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results and the lab's remote"], project)
    run(["dvc", "remote", "modify", "--local", "lab", "keyfile", str(wrong)], project)  # each user's own key, not in git
    refused = failing(["dvc", "push", "-r", "lab"], project)
    errors = [line for line in refused.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "Permission denied" in errors[0], refused
    run(["dvc", "remote", "modify", "--local", "lab", "keyfile", str(key)], project)
    run(["dvc", "push", "-r", "lab"], project)
    assert list(Path(f"/home/{REMOTE_USER}/dvc-store").rglob("*"))  # on the remote user's disk
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    run(["dvc", "remote", "modify", "--local", "lab", "keyfile", str(key)], clone)
    run(["dvc", "pull", "-r", "lab", "--with-deps", "trials"], clone)  # the stages this module ran
    assert "up to date" in run(["dvc", "status", "--with-deps", "trials"], clone)
    theirs, ours = output_files(clone), output_files(project)
    assert theirs.keys() == ours.keys() and len(ours) >= 5
    assert all(theirs[name] == ours[name] for name in ours)


def test_rotating_the_admin_password_refuses_the_old_one_at_once(lab):
    """Last: the module's login changes here."""
    search = f"{lab.url}/api/2.0/mlflow/experiments/search?max_results=1"
    rotated = _team(lab.project, "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = _env_file(lab.project)["MLFLOW_TRACKING_PASSWORD"]
    assert new != lab.password and len(new) >= 12
    assert request(search, "admin", lab.password)[0] == 401 and request(search, "admin", new)[0] == 200
    again = _team(lab.project, "start", "--port", str(lab.port), "--db-port", str(lab.db_port))
    assert again.returncode == 0 and "already running" in again.stdout and _env_file(lab.project)[
        "MLFLOW_TRACKING_PASSWORD"] == new
