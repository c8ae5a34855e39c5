"""The findings sentences that report wall times come from the runs' histories, not from text."""
from report.findings import pipeline_time, study_time


def record(name, method, seed, primary, seconds):
    return {"name": name, "method": method, "seed": seed, "primary": primary, "command_wall_time_s": seconds}


def test_pipeline_and_study_times_are_summed_from_the_runs():
    records = [record("odd", "odd", 42, True, 240.0), record("even", "even", 42, True, 180.0),
               record("odd-seed1", "odd", 1, False, 210.0), record("even-seed1", "even", 1, False, 150.0),
               record("odd-seed2", "odd", 2, False, 270.0)]
    assert pipeline_time(records).endswith("odd 4.0, even 3.0; 7.0 in all.")
    sentence = study_time(records)
    assert "`make study SEEDS=3`" in sentence and "3 extra runs (even, odd with seeds 1, 2)" in sentence
    assert "took 10.5 minutes of `train.py` in all, 2.5 to 4.5 each" in sentence


def test_without_study_runs_there_is_no_study_sentence():
    assert study_time([record("odd", "odd", 42, True, 240.0)]) is None
