"""The shared training machinery: batching, a real training step, NaN stop, atomic saves (resuming: test_resume.py)."""
import json

import pytest
import torch

from conftest import tiny_classifier, tiny_history, tiny_tokenizer
from experiments.resume import EpochCheckpoints
from training import loop
from training.batching import length_bucketed_batches, make_batch, pad_batch
from training.run_folder import save_run
from training.distributed import Distributed
from training.loop import EncodedSplit, NonFiniteLossError, TrainingConfig, cross_entropy_loss, train

CPU = Distributed(rank=0, world_size=1, device=torch.device("cpu"))


def tiny_split(n=40, seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 20, (n,), generator=generator)
    token_ids = [[2, *torch.randint(4, 30, (int(k),), generator=generator).tolist(), 3] for k in lengths]
    labels = [int(ids[1] % 2) for ids in token_ids]
    return EncodedSplit(token_ids, labels)


def test_batches_are_deterministic_and_of_similar_length():
    lengths = [(7 * i) % 50 + 1 for i in range(1000)]
    first = length_bucketed_batches(lengths, 16, seed=1, epoch=0)
    assert first == length_bucketed_batches(lengths, 16, seed=1, epoch=0)
    assert first != length_bucketed_batches(lengths, 16, seed=1, epoch=1)
    assert sorted(i for batch in first for i in batch) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first) / len(first)
    assert spread < 5, "pools sorted by length should give batches of similar length"


def test_shards_are_disjoint_and_cover_the_data():
    lengths = list(range(1, 101))
    shards = [length_bucketed_batches(lengths, 8, seed=0, epoch=0, rank=r, world_size=3) for r in range(3)]
    assert len({len(shard) for shard in shards}) == 1, "every rank must take the same number of steps"
    seen = [i for shard in shards for batch in shard for i in batch]
    assert len(seen) == len(set(seen))
    all_batches = length_bucketed_batches(lengths, 8, seed=0, epoch=0)
    assert len(seen) == sum(len(b) for b in all_batches[:len(all_batches) - len(all_batches) % 3])


def test_evaluation_order_is_sorted_by_length():
    lengths = [5, 1, 4, 2, 3]
    assert length_bucketed_batches(lengths, 2, seed=0, epoch=0, shuffle=False) == [[1, 3], [4, 2], [0]]


def test_dynamic_padding_pads_to_the_longest_in_the_batch():
    input_ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=1)
    assert input_ids.tolist() == [[5, 6, 7], [8, 1, 1]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    batch = make_batch([1, 0], [[5, 6], [8]], [0, 1], pad_id=1)
    assert batch["labels"].tolist() == [1, 0] and batch["index"].tolist() == [1, 0]


def test_a_real_training_run_updates_the_model_and_logs_everything():
    model = tiny_classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = train(model, cross_entropy_loss, tiny_split(), tiny_split(20, seed=1),
                    config=TrainingConfig(epochs=2, lr=1e-3, batch_size=8), env=CPU, pad_id=0,
                    history={})
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(history["steps"]) == 10 and {"loss", "ce", "lr"} <= set(history["steps"][0])
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    last_epoch_ce = [step["ce"] for step in history["steps"] if step["epoch"] == 2]
    assert history["epochs"][1]["train_terms"]["ce"] == pytest.approx(sum(last_epoch_ce) / len(last_epoch_ce))
    assert history["epochs"][1]["train_terms"]["loss"] == history["epochs"][1]["train_loss"]
    assert 0 <= history["validation_threshold"] <= 1 and history["best_epoch"] in (1, 2)


def test_save_run_writes_a_plain_hf_folder(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model, history = tiny_classifier(), tiny_history("odd")
    save_run(tmp_path / "run", model, tiny_tokenizer(), history)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run")
    ids = torch.tensor([[2, 5, 6, 3]])
    torch.testing.assert_close(loaded.eval()(ids).logits, model(ids).logits)
    assert AutoTokenizer.from_pretrained(tmp_path / "run")("you idiot")["input_ids"] == [2, 4, 7, 3]
    assert json.loads((tmp_path / "run" / "history.json").read_text()) == history


def test_a_failed_save_leaves_the_previous_run_untouched(tmp_path):
    model = tiny_classifier()
    save_run(tmp_path / "run", model, tiny_tokenizer(), tiny_history(version=1))

    def crash(path):
        raise OSError("disk full")

    with pytest.raises(OSError):
        save_run(tmp_path / "run", model, tiny_tokenizer(), tiny_history(version=2), {"adapter.safetensors": crash})
    assert json.loads((tmp_path / "run" / "history.json").read_text())["args"]["version"] == 1
    assert not (tmp_path / "run" / "adapter.safetensors").exists()


def test_the_best_epochs_weights_are_the_ones_kept(tmp_path, monkeypatch):
    """Epoch 1 validates best and epoch 2 worse: the model must end with epoch 1's weights, not the last ones."""
    real_validate, weights_at_validation = loop.validate, []

    def epoch_two_is_worse(model, *args, **kwargs):
        weights_at_validation.append(loop.trainable_state(model))
        metrics = real_validate(model, *args, **kwargs)
        metrics["roc_auc"] = {1: 0.9, 2: 0.6}[len(weights_at_validation)]
        metrics["best_f1_threshold"] = {1: 0.25, 2: 0.75}[len(weights_at_validation)]
        return metrics

    monkeypatch.setattr(loop, "validate", epoch_two_is_worse)
    model = tiny_classifier()
    history = train(model, cross_entropy_loss, tiny_split(), tiny_split(20, seed=1),
                    config=TrainingConfig(epochs=2, lr=1e-3, batch_size=8), env=CPU, pad_id=0,
                    history={})

    epoch_one, epoch_two = weights_at_validation
    assert any(not torch.equal(epoch_one[k], epoch_two[k]) for k in epoch_one), "epoch 2 did train"
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, epoch_one.get(name, value), rtol=0, atol=0)
    assert history["best_epoch"] == 1 and history["validation_threshold"] == 0.25
    assert [e["validation"]["roc_auc"] for e in history["epochs"]] == [0.9, 0.6]

    saved = tmp_path / "run"
    save_run(saved, model, tiny_tokenizer(), history)
    from transformers import AutoModelForSequenceClassification
    on_disk = AutoModelForSequenceClassification.from_pretrained(saved).state_dict()
    for name, value in epoch_one.items():
        torch.testing.assert_close(on_disk[name], value, rtol=0, atol=0)


def test_epoch_seeds_of_two_run_seeds_never_share_a_dropout_stream(monkeypatch):
    seeds, real_manual_seed = [], torch.manual_seed

    def recorded(seed):
        seeds.append(seed)
        return real_manual_seed(seed)

    models = [tiny_classifier(), tiny_classifier()]  # (their initialisation seeds torch too)
    monkeypatch.setattr(torch, "manual_seed", recorded)
    for model, (run_seed, epochs) in zip(models, ((1, 2), (2, 1))):
        train(model, cross_entropy_loss, tiny_split(), tiny_split(20, 1),
              config=TrainingConfig(epochs=epochs, batch_size=8, seed=run_seed), env=CPU, pad_id=0,
              history={})
    seed_1_epochs, seed_2_epochs = seeds[:2], seeds[2:]
    assert len(seeds) == 3 and not set(seed_1_epochs) & set(seed_2_epochs), \
        "seed 1 epoch 1 must not replay the dropout of seed 2 epoch 0"
    assert seeds == [loop.epoch_seed(1, 0), loop.epoch_seed(1, 1), loop.epoch_seed(2, 0)]


def test_a_finite_loss_with_a_non_finite_gradient_also_stops_the_run():
    def loss_with_an_infinite_gradient(model, batch):
        terms = cross_entropy_loss(model, batch)
        terms["loss"].register_hook(lambda grad: grad * float("inf"))  # the loss stays finite
        return terms

    with pytest.raises(NonFiniteLossError, match=r"the loss became [0-9.]+ \(gradient norm (inf|nan)\)"):
        train(tiny_classifier(), loss_with_an_infinite_gradient, tiny_split(), tiny_split(20, 1),
              config=TrainingConfig(epochs=1, batch_size=8), env=CPU, pad_id=0, history={})


def test_validation_runs_in_fp32_even_when_training_uses_bf16():
    model, split = tiny_classifier(), tiny_split(20, 1)
    in_bf16_run = loop.validate(model, split, 0, torch.device("cpu"), TrainingConfig(bf16=True))
    in_fp32_run = loop.validate(model, split, 0, torch.device("cpu"), TrainingConfig(bf16=False))
    assert in_bf16_run == in_fp32_run


def test_encode_texts_truncates_to_max_length_and_leaves_padding_to_the_batches():
    from training.batching import encode_texts
    assert encode_texts(tiny_tokenizer(), ("you are an idiot", "thanks"), max_length=4) == [[2, 4, 5, 3], [2, 12, 3]]
    assert encode_texts(tiny_tokenizer(), ["you are an idiot"], max_length=16) == [[2, 4, 5, 6, 7, 3]]


def test_the_cross_entropy_loss_ignores_padding():
    model, split = tiny_classifier(), tiny_split(6)
    batch = make_batch(list(range(6)), split.token_ids, split.labels, pad_id=0)
    assert (batch["attention_mask"] == 0).any(), "the batch has padding"
    with torch.no_grad():
        padded = cross_entropy_loss(model, batch)
        one_by_one = torch.stack([torch.nn.functional.cross_entropy(
            model(input_ids=torch.tensor([ids])).logits, torch.tensor([label]))
            for ids, label in zip(split.token_ids, split.labels)]).mean()
    torch.testing.assert_close(padded["loss"], one_by_one, rtol=1e-5, atol=1e-6)
    assert padded["ce"] is padded["loss"]


def test_validation_metrics_match_an_independent_fp32_computation():
    from sklearn.metrics import roc_auc_score
    model, split = tiny_classifier(seed=3), tiny_split(30, seed=2)
    metrics = loop.validate(model, split, 0, torch.device("cpu"), TrainingConfig(bf16=True, eval_batch_size=7))
    with torch.inference_mode():
        logits = torch.cat([model(input_ids=torch.tensor([ids])).logits for ids in split.token_ids])
    probs = torch.softmax(logits, dim=-1)[:, 1].numpy()
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(split.labels, probs), abs=1e-9)
    assert metrics["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, torch.tensor(split.labels)).item(),
                                            abs=1e-5), "validation runs in fp32 even when training uses bf16"
    assert metrics["probability_std"] == pytest.approx(float(probs.std()), abs=1e-6)


def test_the_optimizer_decays_matrices_only_and_warms_up_linearly():
    model = tiny_classifier()
    config = TrainingConfig(lr=1e-3, weight_decay=0.05, warmup_ratio=0.1)
    optimizer, scheduler = loop.build_optimizer(model, config, total_steps=100)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {p.ndim for p in decay["params"]} == {2} and {p.ndim for p in no_decay["params"]} == {1}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["fused"] is True and no_decay["fused"] is True
    learning_rates = []
    for _ in range(20):
        learning_rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert learning_rates[0] == 0.0 and learning_rates[5] == pytest.approx(5e-4) and learning_rates[10] == pytest.approx(1e-3)
    assert learning_rates[19] == pytest.approx(1e-3 * 81 / 90), "then linear decay to 0 at step 100"


# The loop's bookkeeping, pinned value by value: the learning rate of every step, what every step
# and epoch logs, the clock-derived fields, the messages, the progress output, data parallelism.

class ManualClock:
    """A stand-in for ``time`` in training.loop: the time moves only when a test's loss function says so."""

    def __init__(self, start=1000.0):
        self.now = start

    def perf_counter(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def loss_that_takes(clock, seconds):
    """cross_entropy_loss that takes ``seconds`` of the manual clock per step."""
    def loss_fn(model, batch):
        clock.advance(seconds)
        return cross_entropy_loss(model, batch)
    return loss_fn


def test_the_learning_rate_warms_up_for_int_ratio_times_total_steps_then_decays_linearly():
    config = TrainingConfig(epochs=2, lr=2e-3, batch_size=8, warmup_ratio=0.25)  # 10 steps, int(2.5) = 2 warm-up
    history = train(tiny_classifier(), cross_entropy_loss, tiny_split(), tiny_split(20, 1), config=config, env=CPU,
                    pad_id=0, history={})
    # the rate after each step's scheduler.step(), as logged with that step
    expected = [2e-3 * step / 2 if step < 2 else 2e-3 * (10 - step) / 8 for step in range(1, 11)]
    assert [step["lr"] for step in history["steps"]] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_the_optimizer_uses_the_configured_learning_rate_for_both_groups():
    model = tiny_classifier()
    optimizer, _ = loop.build_optimizer(model, TrainingConfig(lr=3e-4, warmup_ratio=0.0), total_steps=10)
    assert [group["initial_lr"] for group in optimizer.param_groups] == [3e-4, 3e-4]
    assert [group["lr"] for group in optimizer.param_groups] == [3e-4, 3e-4], "no warm-up: the full rate at once"


def test_every_step_logs_its_number_epoch_and_terms_rounded_to_six_digits_and_leaves_no_gradients():
    def loss_with_an_extra_term(model, batch):
        return {**cross_entropy_loss(model, batch), "extra": torch.tensor(0.123456789)}

    model = tiny_classifier()
    history = train(model, loss_with_an_extra_term, tiny_split(), tiny_split(20, 1),
                    config=TrainingConfig(epochs=2, lr=1e-3, batch_size=8), env=CPU, pad_id=0, history={})
    steps = history["steps"]
    assert [s["step"] for s in steps] == list(range(1, 11))
    assert [s["epoch"] for s in steps] == [1] * 5 + [2] * 5
    assert all(set(s) == {"step", "epoch", "lr", "loss", "ce", "extra"} for s in steps)
    assert all(s["extra"] == 0.123457 for s in steps), "each term rounded to 6 decimals"
    assert all(s["loss"] == round(s["loss"], 6) and 0.1 < s["loss"] < 5 for s in steps)
    assert all(s["loss"] != round(s["loss"], 4) for s in steps[:3]), "6 decimals, not fewer"
    for epoch in history["epochs"]:
        mine = [s for s in steps if s["epoch"] == epoch["epoch"]]
        assert epoch["train_terms"] == pytest.approx(
            {name: sum(s[name] for s in mine) / len(mine) for name in ("loss", "ce", "extra")}, abs=1e-12)
    assert all(p.grad is None for p in model.parameters()), "every step ends with the gradients freed"


def test_the_times_and_the_throughput_come_from_the_clock(monkeypatch):
    clock = ManualClock()
    monkeypatch.setattr(loop, "time", clock)
    history = train(tiny_classifier(), loss_that_takes(clock, 0.3141593), tiny_split(), tiny_split(20, 1),
                    config=TrainingConfig(epochs=2, lr=1e-3, batch_size=8), env=CPU, pad_id=0, history={})
    assert [e["wall_time_s"] for e in history["epochs"]] == [1.57, 3.14]  # 5 and 10 steps of 0.3141593 s
    assert history["train_time_s"] == pytest.approx(10 * 0.3141593, abs=1e-9)
    assert history["wall_time_s"] == 3.14
    assert history["examples_per_s"] == round(2 * 40 / (10 * 0.3141593), 2) == 25.46
    assert history["device"] == "cpu" and history["world_size"] == 1


class TwoRanks(Distributed):
    """One rank of a two-process run, without a process group: the barrier is only counted."""
    barriers = 0

    def barrier(self):
        type(self).barriers += 1


class FakeDDP(torch.nn.Module):
    """Stands in for DistributedDataParallel: forwards to the module it wraps."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def test_rank_one_of_two_trains_its_own_shard_through_ddp_and_writes_nothing(tmp_path, monkeypatch, capsys):
    clock = ManualClock()
    monkeypatch.setattr(loop, "time", clock)
    monkeypatch.setattr(loop, "DistributedDataParallel", FakeDDP)
    monkeypatch.setattr(TwoRanks, "barriers", 0)
    split = tiny_split(37)  # 5 batches of 8, 8, 8, 8, 5: the two ranks' shards differ in size
    lengths = [len(ids) for ids in split.token_ids]
    shards = {(rank, epoch): length_bucketed_batches(lengths, 8, seed=42, epoch=epoch, rank=rank, world_size=2)
              for rank in (0, 1) for epoch in (0, 1)}
    examples = sum(len(b) for b in shards[1, 0])
    assert examples != sum(len(b) for b in shards[0, 0]) and len(shards[1, 0]) == 2
    seen = []

    def recording_loss(network, batch):
        assert isinstance(network, FakeDDP) and isinstance(network.module, type(model))
        seen.append(batch["index"].tolist())
        clock.advance(0.25)
        return cross_entropy_loss(network, batch)

    model = tiny_classifier()
    config = TrainingConfig(epochs=2, lr=1e-3, batch_size=8, warmup_ratio=0.5)
    history = train(model, recording_loss, split, tiny_split(20, 1), config=config,
                    env=TwoRanks(rank=1, world_size=2, device=torch.device("cpu")), pad_id=0, history={},
                    checkpoints=EpochCheckpoints(tmp_path / "ckpt"))
    assert seen == shards[1, 0] + shards[1, 1]
    # 2 steps per epoch on this rank: 4 in all, int(0.5 * 4) = 2 of warm-up
    assert [s["lr"] for s in history["steps"]] == pytest.approx([5e-4, 1e-3, 5e-4, 0.0], abs=1e-15)
    assert history["world_size"] == 2 and history["wall_time_s"] == 1.0
    assert history["examples_per_s"] == round(examples * 2 * 2 / 1.0, 2), "this rank's examples times the ranks"
    assert history["epochs"] == [] and not (tmp_path / "ckpt").exists(), "only rank 0 validates and saves"
    assert TwoRanks.barriers == 2, "one barrier per epoch"
    captured = capsys.readouterr()
    assert captured.out == "" and "epoch 1/2" not in captured.err, "only rank 0 prints and draws progress bars"


def test_a_single_process_does_not_wrap_the_model(monkeypatch):
    monkeypatch.setattr(loop, "DistributedDataParallel", FakeDDP)
    networks = []

    def recording_loss(network, batch):
        networks.append(network)
        return cross_entropy_loss(network, batch)

    model = tiny_classifier()
    train(model, recording_loss, tiny_split(16), tiny_split(20, 1), config=TrainingConfig(epochs=1, batch_size=8),
          env=CPU, pad_id=0, history={})
    assert len(networks) == 2 and all(network is model for network in networks)


def test_rank_zero_draws_a_progress_bar_per_epoch_and_prints_each_epochs_summary(capsys):
    history = train(tiny_classifier(), cross_entropy_loss, tiny_split(), tiny_split(20, 1),
                    config=TrainingConfig(epochs=2, lr=1e-3, batch_size=8), env=CPU, pad_id=0, history={})
    captured = capsys.readouterr()
    assert "epoch 1/2:" in captured.err and "epoch 2/2:" in captured.err
    assert "epoch 0/2" not in captured.err and "epoch 3/2" not in captured.err
    last = history["steps"][-1]
    assert f"loss={last['loss']:.4f}, ce={last['ce']:.4f}" in captured.err, "the step's terms as the bar's postfix"
    expected = [f"epoch {e['epoch']}: train loss {e['train_loss']:.4f} | validation loss "
                f"{e['validation']['loss']:.4f} acc {e['validation']['accuracy']:.4f} F1 "
                f"{e['validation']['f1']:.4f} ROC-AUC {e['validation']['roc_auc']:.4f}" for e in history["epochs"]]
    assert captured.out.splitlines() == expected


def test_a_tie_in_validation_roc_auc_keeps_the_earlier_epoch(monkeypatch):
    real_validate, weights_at_validation = loop.validate, []

    def equally_good_epochs(model, *args, **kwargs):
        weights_at_validation.append(loop.trainable_state(model))
        metrics = real_validate(model, *args, **kwargs)
        metrics["roc_auc"] = 0.8
        metrics["best_f1_threshold"] = {1: 0.25, 2: 0.75}[len(weights_at_validation)]
        return metrics

    monkeypatch.setattr(loop, "validate", equally_good_epochs)
    model = tiny_classifier()
    history = train(model, cross_entropy_loss, tiny_split(), tiny_split(20, 1),
                    config=TrainingConfig(epochs=2, lr=1e-3, batch_size=8), env=CPU, pad_id=0, history={})
    assert history["best_epoch"] == 1 and history["validation_threshold"] == 0.25
    for name, value in weights_at_validation[0].items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)


def nan_after(calls_before_nan):
    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += 1
        terms = cross_entropy_loss(model, batch)
        if calls["n"] > calls_before_nan:
            terms["loss"] = terms["loss"] * float("nan")
        return terms
    return loss_fn


def test_a_nan_names_its_epoch_and_step_and_frees_the_gradients():
    model = tiny_classifier()
    with pytest.raises(NonFiniteLossError) as error:
        train(model, nan_after(7), tiny_split(), tiny_split(20, 1), config=TrainingConfig(epochs=3, batch_size=8),
              env=CPU, pad_id=0, history={})
    assert str(error.value) == ("the loss became nan (gradient norm nan) at epoch 2, step 8. "
                                "Training stopped: try a lower --lr.")
    assert all(p.grad is None for p in model.parameters()), "the non-finite gradients are dropped"


def test_a_nan_in_the_first_epoch_reports_exactly():
    with pytest.raises(NonFiniteLossError) as error:
        train(tiny_classifier(), nan_after(2), tiny_split(), tiny_split(20, 1),
              config=TrainingConfig(epochs=2, batch_size=8), env=CPU, pad_id=0, history={})
    assert str(error.value) == ("the loss became nan (gradient norm nan) at epoch 1, step 3. "
                                "Training stopped: try a lower --lr.")


@pytest.fixture
def float16_autocast_default():
    """CPU autocast defaulting to float16, as CUDA's does: --bf16 must still mean bfloat16."""
    default = torch.get_autocast_dtype("cpu")
    torch.set_autocast_dtype("cpu", torch.float16)
    yield
    torch.set_autocast_dtype("cpu", default)


def test_bf16_autocast_is_bfloat16_whatever_the_devices_default(float16_autocast_default):
    cpu = torch.device("cpu")
    with loop.autocast(cpu, True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with loop.autocast(cpu, False):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_the_loss_runs_under_bf16_autocast_only_when_asked(float16_autocast_default):
    for bf16, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        dtypes = []

        def recording_loss(model, batch):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            dtypes.append(logits.dtype)
            return cross_entropy_loss(model, batch)

        train(tiny_classifier(), recording_loss, tiny_split(16), tiny_split(20, 1),
              config=TrainingConfig(epochs=1, batch_size=8, bf16=bf16), env=CPU, pad_id=0, history={})
        assert dtypes == [dtype, dtype]


def test_batches_of_one_are_allowed_and_of_zero_refused():
    assert length_bucketed_batches([3, 1, 2], 1, seed=0, epoch=0, shuffle=False) == [[1], [2], [0]]
    assert sorted(length_bucketed_batches([3, 1, 2], 1, seed=0, epoch=0)) == [[0], [1], [2]]
    with pytest.raises(ValueError, match="batch size must be at least 1, got 0"):
        length_bucketed_batches([3, 1, 2], 0, seed=0, epoch=0)


def test_training_pools_are_random_draws_not_neighbours_in_the_data_or_one_global_sort():
    lengths = list(range(1, 401))  # distinct lengths, in the data order: pools of 100 from 400 examples
    batches = length_bucketed_batches(lengths, 2, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(400))
    gaps = [abs(lengths[a] - lengths[b]) for a, b in batches]
    assert max(gaps) > 1, "a pool of random examples leaves gaps between neighbouring lengths"
    assert sum(gaps) / len(gaps) < 10, "but within a pool the batches are still sorted by length"


def test_evaluation_sorts_the_whole_set_and_keeps_the_data_order_among_equal_lengths():
    lengths = [(7 * i) % 3 for i in range(150)]  # many ties, more examples than 50 batches of 2
    batches = length_bucketed_batches(lengths, 2, seed=0, epoch=0, shuffle=False)
    order = sorted(range(150), key=lambda i: lengths[i])  # Python's sort is stable
    assert batches == [order[i:i + 2] for i in range(0, 150, 2)]


def test_batch_tensors_are_int64():
    batch = make_batch([1, 0], [[5, 6], [8]], [0, 1], pad_id=1)
    assert {name: t.dtype for name, t in batch.items()} == {name: torch.long for name in batch}


def test_each_epochs_summary_is_flushed_at_once_so_a_piped_log_shows_it(monkeypatch):
    import io
    import sys

    class PipedStdout(io.StringIO):
        """stdout as a pipe to a run's log file: only what is flushed has reached the log."""
        def __init__(self):
            super().__init__()
            self.flushed = []

        def flush(self):
            self.flushed.append(self.getvalue())

    stdout = PipedStdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    train(tiny_classifier(), cross_entropy_loss, tiny_split(16), tiny_split(20, 1),
          config=TrainingConfig(epochs=2, batch_size=8), env=CPU, pad_id=0, history={})
    lines = stdout.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2"]
    assert lines[0] + "\n" in stdout.flushed and stdout.getvalue() in stdout.flushed
