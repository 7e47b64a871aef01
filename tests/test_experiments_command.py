"""experiments/command.py: an experiment stopped by a signal, or given bad input, ends with one line and the exit
status a shell script can act on, never a traceback."""

import signal

import pytest

from experiments.command import run_command
from jaxphysvae.errors import DataError
from jaxphysvae.interrupt import Interrupted


def _raises(error):
    def main():
        raise error
    return main


@pytest.mark.parametrize("error, code, line", [
    # an experiment takes no --resume flag: the library's hint would send the user to an argparse error
    (Interrupted(signal.SIGTERM, "sweep stopped by SIGTERM after epoch 115: continue with --resume"), 143,
     "experiments.demo: sweep stopped by SIGTERM after epoch 115: run the same command again to continue\n"),
    (KeyboardInterrupt(), 130, "experiments.demo: interrupted\n"),
    (DataError("raw locomotion directory x holds no SubjectN.mat files"), 2,
     "experiments.demo: error: raw locomotion directory x holds no SubjectN.mat files\n"),
])
def test_a_stop_or_bad_input_is_one_line_and_an_exit_status(capsys, error, code, line):
    with pytest.raises(SystemExit) as exit_:
        run_command(_raises(error), name="experiments.demo")
    assert exit_.value.code == code
    assert capsys.readouterr().err == line


def test_a_finished_experiment_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_command(lambda: {"rows": []}, name="experiments.demo")
    assert exit_.value.code == 0 and capsys.readouterr().err == ""


def test_other_errors_still_raise():  # a bug is not bad input: its traceback is what finds it
    with pytest.raises(ZeroDivisionError):
        run_command(lambda: 1 / 0, name="experiments.demo")
