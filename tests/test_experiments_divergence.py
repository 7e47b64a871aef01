"""experiments/divergence.py on a toy budget: every step recorded, bad steps saved, and a replay that reproduces a
saved step's record exactly."""

import json

from experiments import divergence
from tests.helpers import CLI_SMALL


def test_steps_are_recorded_and_a_saved_step_replays_exactly(tmp_path):
    sets = [v for k, v in zip(CLI_SMALL[::2], CLI_SMALL[1::2])] + ["flow_phy=2", "flow_aux1=2", "flow_aux2=2"]
    args = ["--preset", "pendulum-nf", "--epochs", "6", "--spike", "0", "--out", str(tmp_path)]
    out = divergence.main(args + [a for s in sets for a in ("--set", s)])
    rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(24))  # 32 sequences in batches of 8, 6 epochs
    assert {"grad_feat_phy", "grad_flow_aux2", "grad_physics", "flow_aux2_margin_min", "lnvar_phy_min", "kl_max",
            "x_P_absmax"} <= set(rows[0])
    saved = [r["saved"] for r in rows if "saved" in r]
    assert saved == [f"spike_{s:06d}.ckpt" for s in range(20, 24)]  # every step past the 20-step history
    assert divergence.main(["--replay", str(out / saved[-1])]) == {}
