from jaxphysvae.cli import main


def test_data_info_prints_a_summary(capsys):
    assert main(["data", "info", "pendulum", "--split", "train", "--n", "5"]) == 0
    out = capsys.readouterr().out
    assert "pendulum/train: 5 sequences x 1 channels x 50 steps" in out and "param omega" in out


def test_unknown_data_set_is_a_clear_error_without_traceback(capsys):
    assert main(["data", "info", "galaxy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxphysvae: error: unknown data set 'galaxy'") and "Traceback" not in err


def test_cli_least_squares_fits_the_physics_alone_to_the_split(tmp_path, capsys):
    import numpy as np

    from jaxphysvae.data import pendulum
    out = tmp_path / "ls.npz"
    sizes = ["--set", "n_train=32", "--set", "n_valid=16", "--set", "n_test=16", "--set", "batch_size=8"]
    assert main(["least-squares", "--preset", "pendulum-phys-vae", *sizes, "--points", "300", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with np.load(out) as f:
        test = pendulum.load("test", n=16)
        np.testing.assert_array_equal(f["x"], test.x)
        np.testing.assert_array_equal(f["true_omega"], test.params["omega"])
        mae = np.abs(f["omega"] - test.params["omega"]).mean()
        assert f["omega"].shape == (16,) and f["x_hat"].shape == test.x.shape
        assert np.all((f["omega"] >= 0.392 - 1e-6) & (f["omega"] <= 3.53 + 1e-6))
    assert f"MAE against the true values {mae:.4g}" in printed and "grid of 300 values" in printed
    assert main(["least-squares", "--preset", "pendulum-phys-vae", "--out", str(tmp_path / "ls.txt")]) == 2
    assert main(["least-squares", "--preset", "locomotion-phys-vae"]) == 2  # a learned Hamiltonian: refused


def test_a_plain_ctrl_c_says_interrupted_and_exits_130(capsys, monkeypatch):
    from jaxphysvae import cli

    def stop(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_data_info", stop)
    assert main(["data", "info", "pendulum"]) == 130
    assert capsys.readouterr().err == "jaxphysvae: interrupted\n"
