"""Resuming an interrupted run (experiments/resume.py): the loop's state saved after every epoch and restored
exactly, a checkpoint of other settings or another model refused, and what a stopped run can go on from."""
import contextlib
import json
from pathlib import Path

import pytest
import torch

import train
from conftest import tiny_classifier
from experiments import train_extras
from experiments.resume import CheckpointError, EpochCheckpoints, checkpoint_dir
from test_train_cli import args_for, world  # noqa: F401 - fixtures
from test_training import CPU, ManualClock, loss_that_takes, nan_after, tiny_split
from training import loop
from training.loop import NonFiniteLossError, TrainingConfig, cross_entropy_loss, train as train_loop


@contextlib.contextmanager
def killed_in_epoch_two(monkeypatch):
    """Training inside this block is interrupted, as by Ctrl-C, when its second epoch starts."""
    real_batches = loop.length_bucketed_batches

    def interrupted_at_epoch_two(*args, **kwargs):
        if kwargs.get("epoch") == 1 and kwargs.get("shuffle", True):
            raise KeyboardInterrupt
        return real_batches(*args, **kwargs)

    monkeypatch.setattr(loop, "length_bucketed_batches", interrupted_at_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        yield
    monkeypatch.setattr(loop, "length_bucketed_batches", real_batches)


def train_tiny(model, checkpoints, loss_fn=cross_entropy_loss, config=TrainingConfig(epochs=2, lr=1e-3, batch_size=8)):
    return train_loop(model, loss_fn, tiny_split(), tiny_split(20, 1), config=config, env=CPU, pad_id=0, history={},
                      checkpoints=checkpoints)


def lora_classifier(seed=0, r=2):
    from lora.lora import inject_lora, mark_only_lora_trainable
    model = tiny_classifier(seed=seed)
    inject_lora(model, r=r)
    mark_only_lora_trainable(model)
    return model


# ---- the loop with checkpoints ---------------------------------------------------------------------

def test_a_checkpoint_is_saved_after_every_epoch_with_the_history_so_far(tmp_path, monkeypatch):
    clock = ManualClock()
    monkeypatch.setattr(loop, "time", clock)
    history = train_tiny(tiny_classifier(), EpochCheckpoints(tmp_path / "ckpt"), loss_that_takes(clock, 0.3141593))
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["epoch"] == 1 and [e["epoch"] for e in state["history"]["epochs"]] == [1, 2]
    assert state["history"]["train_time_s"] == pytest.approx(history["train_time_s"], abs=1e-9)


def test_resume_continues_exactly_where_a_killed_run_stopped(tmp_path, monkeypatch):
    reference = tiny_classifier()
    train_tiny(reference, None)
    with killed_in_epoch_two(monkeypatch):
        train_tiny(tiny_classifier(), EpochCheckpoints(tmp_path / "b"))
    resumed = tiny_classifier(seed=123)
    history = train_tiny(resumed, EpochCheckpoints(tmp_path / "b", resume=True))
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=1e-6)


def test_a_resumed_run_records_the_resume_and_counts_the_time_before_it(tmp_path, monkeypatch, capsys):
    clock = ManualClock()
    monkeypatch.setattr(loop, "time", clock)
    with killed_in_epoch_two(monkeypatch):
        train_tiny(tiny_classifier(), EpochCheckpoints(tmp_path / "ckpt"), loss_that_takes(clock, 0.3141593))
    clock.advance(500.0)  # the time between the kill and the resume is not training time
    capsys.readouterr()
    history = train_tiny(tiny_classifier(), EpochCheckpoints(tmp_path / "ckpt", resume=True),
                         loss_that_takes(clock, 0.3141593))
    assert f"resuming after epoch 1, from {tmp_path / 'ckpt'}\n" in capsys.readouterr().out
    assert history["resumed_after_epochs"] == [1]
    assert [e["wall_time_s"] for e in history["epochs"]] == [1.57, 3.14]
    assert history["train_time_s"] == pytest.approx(10 * 0.3141593, abs=1e-9)
    assert history["wall_time_s"] == 3.14 and history["examples_per_s"] == 25.46
    assert [s["step"] for s in history["steps"]] == list(range(1, 11))


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train_tiny(tiny_classifier(), EpochCheckpoints(tmp_path / "none", resume=True))


def test_a_corrupt_checkpoint_is_refused(tmp_path):
    train_tiny(tiny_classifier(), EpochCheckpoints(tmp_path / "c"), config=TrainingConfig(epochs=1, batch_size=8))
    (tmp_path / "c" / "last.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="unreadable"):
        train_tiny(tiny_classifier(), EpochCheckpoints(tmp_path / "c", resume=True))


def test_a_lora_checkpoint_holds_the_trainable_weights_and_checks_the_frozen_base(tmp_path):
    from safetensors.torch import load_file
    config = TrainingConfig(epochs=1, batch_size=8)
    model = lora_classifier(seed=0)
    train_tiny(model, EpochCheckpoints(tmp_path / "c"), config=config)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(load_file(tmp_path / "c" / "last.safetensors")) == trainable
    assert len(trainable) < len(model.state_dict()) / 2

    same_base = lora_classifier(seed=0)
    EpochCheckpoints(tmp_path / "c").restore(same_base, *loop.build_optimizer(same_base, config, 10), history={})
    for name, value in model.state_dict().items():
        torch.testing.assert_close(same_base.state_dict()[name], value, rtol=0, atol=0)
    other_base = lora_classifier(seed=1)
    with pytest.raises(CheckpointError, match="different model"):
        EpochCheckpoints(tmp_path / "c").restore(other_base, *loop.build_optimizer(other_base, config, 10), {})


def test_a_checkpoint_with_other_lora_shapes_is_refused_in_one_line(tmp_path):
    config = TrainingConfig(epochs=1, batch_size=8)
    train_tiny(lora_classifier(r=2), EpochCheckpoints(tmp_path / "c"), config=config)
    other_rank = lora_classifier(r=4)
    with pytest.raises(CheckpointError, match=r"weights of other shapes, e\.g\. .*lora_A \(2, 32\) vs \(4, 32\)"):
        EpochCheckpoints(tmp_path / "c").restore(other_rank, *loop.build_optimizer(other_rank, config, 10), {})


def test_checkpoint_lives_beside_the_runs():
    assert checkpoint_dir(Path("runs/odd")) == Path("runs/.checkpoints/odd")


# ---- a stopped run: what it can go on from ---------------------------------------------------------

def test_a_nan_keeps_the_last_good_checkpoint_and_says_where_it_is(tmp_path):
    checkpoints = EpochCheckpoints(tmp_path / "ckpt")
    with pytest.raises(NonFiniteLossError):
        train_tiny(tiny_classifier(), checkpoints, nan_after(7), TrainingConfig(epochs=3, batch_size=8))
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["epoch"] == 0, "epoch 1's checkpoint stays"
    assert checkpoints.kept() == f"The last good checkpoint (after epoch 1) is in {tmp_path / 'ckpt'}."


def test_a_nan_in_the_first_epoch_says_no_checkpoint_was_saved(tmp_path):
    checkpoints = EpochCheckpoints(tmp_path / "ckpt")
    with pytest.raises(NonFiniteLossError):
        train_tiny(tiny_classifier(), checkpoints, nan_after(2))
    assert checkpoints.kept() == "No checkpoint of this run was saved (it failed in its first epoch)."
    assert not (tmp_path / "ckpt").exists()


def test_a_nan_after_resuming_names_the_checkpoint_resumed_from(tmp_path, monkeypatch):
    with killed_in_epoch_two(monkeypatch):
        train_tiny(tiny_classifier(), EpochCheckpoints(tmp_path / "ckpt"))
    checkpoints = EpochCheckpoints(tmp_path / "ckpt", resume=True)
    with pytest.raises(NonFiniteLossError, match="at epoch 2, step 6"):
        train_tiny(tiny_classifier(), checkpoints, nan_after(0))
    assert checkpoints.kept() == f"The last good checkpoint (after epoch 1) is in {tmp_path / 'ckpt'}."


# ---- python -m experiments.train_extras: train.py's run, resumable --------------------------------------

def test_a_nan_run_names_the_steps_logged_and_what_it_can_resume_from(world, monkeypatch):
    monkeypatch.setattr(train, "cross_entropy_loss", nan_after(0))
    with pytest.raises(NonFiniteLossError) as error:
        train_extras.main(args_for("teacher"))
    assert str(error.value).endswith("runs/teacher/ was left as it was. No checkpoint of this run was saved "
                                     "(it failed in its first epoch).")


@pytest.mark.parametrize("change, named", [
    (["--method", "lora-kd"], "--method 'lora-kd' (checkpoint: 'lora')"),
    (["--lr", "0.01"], "--lr 0.01 (checkpoint: 0.001)"),
    (["--seed", "7"], "--seed 7 (checkpoint: 42)"),
    (["--lora-r", "4"], "--lora-r 4 (checkpoint: 8)"),
    (["--lora-r", "4", "--max-length", "12"], "--lora-r 4 (checkpoint: 8); --max-length 12 (checkpoint: 16)"),
])
def test_resume_refuses_each_changed_setting_in_one_line(world, change, named):
    train_extras.main(args_for("lora", "--out", "runs/lora", "--keep-checkpoint"))
    with pytest.raises(CheckpointError) as error:
        train_extras.main(args_for("lora", "--out", "runs/lora", "--resume", *change))
    message = str(error.value)
    assert "\n" not in message and "was made with other settings" in message
    assert named in message


def test_a_checkpoint_resumes_with_its_teacher_named_by_an_absolute_path(world, monkeypatch):
    with killed_in_epoch_two(monkeypatch):
        train_extras.main(args_for("odd", "--epochs", "2"))
    with pytest.raises(CheckpointError, match=r"--teacher 'base'"):  # another teacher is another run
        train_extras.main(args_for("odd", "--epochs", "2", "--resume", "--teacher", "base"))
    train_extras.main(args_for("odd", "--epochs", "2", "--resume", "--teacher", str(world / "teacher")))
    history = json.loads((world / "runs" / "odd" / "history.json").read_text())
    assert history["resumed_after_epochs"] == [1]


def test_an_odd_checkpoint_cannot_be_resumed_as_even(world):
    train_extras.main(args_for("odd", "--out", "runs/student", "--keep-checkpoint"))
    with pytest.raises(CheckpointError, match=r"--method 'even' \(checkpoint: 'odd'\)"):
        train_extras.main(args_for("even", "--out", "runs/student", "--resume"))


def test_a_resumed_run_records_where_it_resumed_and_keeps_its_settings(world, monkeypatch):
    with killed_in_epoch_two(monkeypatch):
        train_extras.main(args_for("teacher", "--epochs", "2", "--seed", "3"))
    train_extras.main(args_for("teacher", "--epochs", "2", "--seed", "3", "--resume", "--threads", "1"))

    history = json.loads((world / "runs" / "teacher" / "history.json").read_text())
    assert history["resumed_after_epochs"] == [1]
    assert [epoch["epoch"] for epoch in history["epochs"]] == [1, 2]
    assert history["args"]["seed"] == 3 and history["args"]["threads"] == 1


def test_a_finished_run_deletes_its_checkpoint_unless_asked_to_keep_it(world):
    train_extras.main(args_for("odd"))
    assert (world / "runs" / "odd" / "history.json").is_file()
    assert not checkpoint_dir(world / "runs" / "odd").exists()
    train_extras.main(args_for("odd", "--keep-checkpoint"))
    assert (checkpoint_dir(world / "runs" / "odd") / "state.json").is_file()


def test_train_py_alone_keeps_no_checkpoint(world):
    train.main(args_for("odd"))
    assert not checkpoint_dir(world / "runs" / "odd").exists()
