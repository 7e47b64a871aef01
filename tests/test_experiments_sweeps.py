"""experiments/sweeps.py: the learning curve of a sweep's members and the flattening figure read from it."""

import json

import pytest

from experiments.sweeps import learning_curve


def test_the_learning_curve_averages_members_and_measures_the_last_fifth(tmp_path):
    rows = [{"epoch": e, "loss": [1.0, 1.0], "valid_sse_per_seq": [12.0 - e, None if e == 3 else 10.0 - e]}
            for e in range(1, 10)] + [{"epoch": 10, "loss": [1.0, 1.0], "valid_sse_per_seq": [30.0, 30.0]}]
    rows.insert(4, {"epoch": 5, "loss": [1.0, 1.0]})  # a line without validation (eval_every > 1) is skipped
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    curve = learning_curve(tmp_path)
    assert curve["epoch"] == list(range(1, 11))
    assert curve["valid_sse_per_seq"][2] == 9.0  # epoch 3: the one member with a value
    assert curve["valid_sse_per_seq"][0] == 10.0  # epoch 1: (11 + 9) / 2
    # the best of the mean by epoch 8 (of 10): 3.0; by the end: 2.0 (epoch 9; epoch 10 is worse): it fell by 1/3
    assert curve["valid_sse_per_seq"][-1] == 30.0 and curve["tail_drop"] == pytest.approx(1 / 3)
    assert learning_curve(tmp_path / "nothing") is None


def test_the_learning_curve_of_some_members_reads_theirs_only(tmp_path):
    # member 0 still falls over the last fifth (8 -> 6: a quarter), member 1 is flat after epoch 2, member 2 has
    # no value at epoch 4 (the mean of the chosen members that have one)
    valid = {1: [20.0, 5.0, 7.0], 2: [10.0, 4.0, 9.0], 4: [9.0, 4.0, None], 8: [8.0, 4.5, 9.0], 10: [6.0, 4.2, 3.0]}
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "valid_sse_per_seq": v}) + "\n"
                                                    for e, v in valid.items()))
    first = learning_curve(tmp_path, [0])
    assert first["epoch"] == [1, 2, 4, 8, 10] and first["valid_sse_per_seq"] == [20.0, 10.0, 9.0, 8.0, 6.0]
    assert first["tail_drop"] == pytest.approx((8.0 - 6.0) / 8.0)
    assert learning_curve(tmp_path, [1])["tail_drop"] == 0.0  # best 4.0 by epoch 8, never lower after
    pair = learning_curve(tmp_path, [1, 2])
    assert pair["valid_sse_per_seq"] == [6.0, 6.5, 4.0, 6.75, 3.6]
    assert pair["tail_drop"] == pytest.approx((4.0 - 3.6) / 4.0)
    assert learning_curve(tmp_path)["valid_sse_per_seq"][0] == pytest.approx(32 / 3, rel=1e-3)  # 4 digits
