"""experiments/bench/bench.py's table: the shares of the measured peak that its rows report."""

from experiments.bench.bench import table, torch_peak_share


def row(torch_steps_per_s):
    return {"backend": "cpu", "arch": "default", "loss": "gan", "batch": 64, "steps_per_s": 10.0,
            "torch_steps_per_s": torch_steps_per_s, "ratio": None, "images_per_s": 640.0, "compile_s": 4.0,
            "gflop_per_step": 6.0, "gflop_per_s": 60.0, "peak_gflop_per_s": 200.0, "peak_share": 0.3,
            "peak_rss_mb_ganjax": 700, "load_avg_1m": 1.0}


def test_the_table_gives_pytorchs_share_of_the_peak_and_what_1_5x_would_need():
    # the fastest thread count counts: 12 steps/s x 6 GFLOP = 72 GFLOP/s = 36 % of 200; 1.5x: 54 %
    assert abs(torch_peak_share(row({"2": 12.0, "1": 7.0})) - 0.36) < 1e-12
    cells = [c.strip() for c in table([row({"2": 12.0, "1": 7.0})]).splitlines()[2].split("|")]
    assert cells[13:16] == ["30.0 % of 200", "36.0 %", "54 %"]
    # without PyTorch (not installed) those two cells are empty, not zero
    assert torch_peak_share(row({})) is None
    cells = [c.strip() for c in table([row({})]).splitlines()[2].split("|")]
    assert cells[14:16] == ["-", "-"]
