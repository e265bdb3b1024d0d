"""`make team-server`'s refusals that need no server: PostgreSQL missing, a project the postgres
user cannot reach (the services themselves are started for real in tests/e2e/test_team.py)."""

import os
import pwd
import shutil

import pytest

from neurolatent.pipeline import team


def test_without_postgresql_start_says_so_in_one_line_and_makes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(team.shutil, "which", lambda name: None)
    monkeypatch.setattr(team.glob, "glob", lambda pattern: [])
    assert team.main(["start", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PostgreSQL is not installed" in err and "apt-get install postgresql" in err, err
    assert not (tmp_path / team.TEAM).exists()


@pytest.mark.skipif(os.geteuid() != 0 or team.runuser() is None, reason="as root only (PostgreSQL runs as postgres)")
def test_as_root_a_project_the_postgres_user_cannot_reach_is_named_before_anything_is_made(tmp_path, capsys):
    if not _has_postgres_user():
        pytest.skip("no postgres user (apt-get install postgresql)")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert team.main(["start", "--root", str(private), "--port", "1", "--db-port", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{private}: the postgres user cannot reach it" in err, err
    assert list(private.iterdir()) == []


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True
