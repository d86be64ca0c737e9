"""Every exercise: the reference solution passes its checker and a typical wrong answer fails."""

import pytest

from dlcourse.course.exercises import REGISTRY, check, reference


def test_exercises_exist_for_early_chapters():
    assert any(k.startswith("ch1.") for k in REGISTRY) and any(k.startswith("ch2.") for k in REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_reference_passes(name, capsys):
    assert check(name, reference(name))
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_typical_wrong_answer_fails_with_a_hint(name, capsys):
    ex = REGISTRY[name]
    assert ex.wrong is not None, f"{name} needs a typical wrong answer (wrong=...) to prove its checker can fail"
    assert not check(name, ex.wrong)
    out = capsys.readouterr().out
    assert "✗" in out and "hint(" in out


def test_unimplemented_stub_says_so(capsys):
    name = sorted(REGISTRY)[0]

    def stub(*args):
        raise NotImplementedError

    assert not check(name, stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_unknown_exercise_is_a_value_error():
    with pytest.raises(ValueError, match="unknown exercise"):
        check("ch0.nothing", print)
