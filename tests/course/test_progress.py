"""A learner's progress: recorded when check passes (never when it fails), kept in one file outside the repository,
shown per chapter, cleared by one call; ``DLCOURSE_PROGRESS=off`` records nothing."""

from __future__ import annotations

import json

import pytest

from dlcourse.course import progress as P
from dlcourse.course.checker import REGISTRY, check, progress, reference, use


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "data" / "progress.json"
    monkeypatch.setenv(P.ENV, str(path))
    return path


def test_a_passing_check_is_recorded_and_a_failing_one_is_not(progress_file, capsys):
    assert check("ch1.sigmoid_grad", reference("ch1.sigmoid_grad"))
    assert not check("ch1.relu_grad", REGISTRY["ch1.relu_grad"].wrong)
    passed = P.passed_steps()
    assert "ch1.sigmoid_grad" in passed and "ch1.relu_grad" not in passed
    assert json.loads(progress_file.read_text())["passed"].keys() == passed.keys()


def test_use_records_the_learners_function_when_it_passes(progress_file, capsys):
    use("ch1.softmax", reference("ch1.softmax"))
    assert "ch1.softmax" in P.passed_steps()


def test_progress_shows_every_chapter_and_clears(progress_file, capsys):
    check("ch2.linear_backward", reference("ch2.linear_backward"))
    shown = progress()
    chapters = {ch for ch, _, _ in shown.summary()}
    assert set(range(1, 9)) <= chapters
    ch2 = dict((ch, (done, total)) for ch, done, total in shown.summary())[2]
    assert ch2[0] == 1 and ch2[1] == len([n for n in REGISTRY if n.startswith("ch2.")])
    assert "✓ linear_backward" in str(shown) and "<table>" in shown._repr_html_()
    P.clear_progress()
    assert P.passed_steps() == {} and not progress_file.exists()


def test_off_records_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(P.ENV, "off")
    assert P.progress_file() is None
    check("ch1.sigmoid_grad", reference("ch1.sigmoid_grad"))
    assert P.passed_steps() == {}
    assert "off" in str(progress())


def test_a_damaged_file_is_started_again_not_an_error(progress_file):
    progress_file.parent.mkdir(parents=True)
    progress_file.write_text("{ not json")
    assert P.passed_steps() == {}
    P.record("ch1.softmax")
    assert list(P.passed_steps()) == ["ch1.softmax"]


def test_the_default_place_is_the_users_data_folder(monkeypatch):
    import platformdirs

    monkeypatch.delenv(P.ENV, raising=False)
    assert P.progress_file().parent == __import__("pathlib").Path(platformdirs.user_data_dir("dlcourse",
                                                                                              appauthor=False))
