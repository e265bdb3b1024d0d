"""`make team-server`'s refusals that need no server: PostgreSQL missing (the services themselves
are started for real in tests/e2e/test_team.py)."""

from neurolatent.pipeline import team


def test_without_postgresql_start_says_so_in_one_line_and_makes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(team.shutil, "which", lambda name: None)
    monkeypatch.setattr(team.glob, "glob", lambda pattern: [])
    assert team.main(["start", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PostgreSQL is not installed" in err and "apt-get install postgresql" in err, err
    assert not (tmp_path / team.TEAM).exists()
