from jaxphysvae.cli import main


def test_data_info_prints_a_summary(capsys):
    assert main(["data", "info", "pendulum", "--split", "train", "--n", "5"]) == 0
    out = capsys.readouterr().out
    assert "pendulum/train: 5 sequences x 1 channels x 50 steps" in out and "param omega" in out


def test_unknown_data_set_is_a_clear_error_without_traceback(capsys):
    assert main(["data", "info", "galaxy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxphysvae: error: unknown data set 'galaxy'") and "Traceback" not in err
