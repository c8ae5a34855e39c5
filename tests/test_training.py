"""The shared training machinery: batching, a real training step, resume, NaN stop, atomic saves."""
import contextlib
import json

import pytest
import torch

from conftest import tiny_classifier, tiny_history, tiny_tokenizer
from training import loop
from training.batching import length_bucketed_batches, make_batch, pad_batch
from training.checkpoint import CheckpointError, checkpoint_dir, load_checkpoint, save_run
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


def test_a_real_training_run_updates_the_model_and_logs_everything(tmp_path):
    model = tiny_classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = train(model, cross_entropy_loss, tiny_split(), tiny_split(20, seed=1),
                    config=TrainingConfig(epochs=2, lr=1e-3, batch_size=8), env=CPU, pad_id=0,
                    history={}, checkpoint=tmp_path / "ckpt")
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(history["steps"]) == 10 and {"loss", "ce", "lr"} <= set(history["steps"][0])
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    last_epoch_ce = [step["ce"] for step in history["steps"] if step["epoch"] == 2]
    assert history["epochs"][1]["train_terms"]["ce"] == pytest.approx(sum(last_epoch_ce) / len(last_epoch_ce))
    assert history["epochs"][1]["train_terms"]["loss"] == history["epochs"][1]["train_loss"]
    assert 0 <= history["validation_threshold"] <= 1 and history["best_epoch"] in (1, 2)
    assert (tmp_path / "ckpt" / "state.json").exists()


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


def test_resume_continues_exactly_where_a_killed_run_stopped(tmp_path, monkeypatch):
    config = TrainingConfig(epochs=2, lr=1e-3, batch_size=8)
    reference = tiny_classifier()
    train(reference, cross_entropy_loss, tiny_split(), tiny_split(20, 1), config=config, env=CPU,
          pad_id=0, history={}, checkpoint=tmp_path / "a")

    with killed_in_epoch_two(monkeypatch):
        train(tiny_classifier(), cross_entropy_loss, tiny_split(), tiny_split(20, 1), config=config, env=CPU,
              pad_id=0, history={}, checkpoint=tmp_path / "b")
    resumed = tiny_classifier(seed=123)
    history = train(resumed, cross_entropy_loss, tiny_split(), tiny_split(20, 1), config=config, env=CPU,
                    pad_id=0, history={}, checkpoint=tmp_path / "b", resume=True)
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=1e-6)


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(tiny_classifier(), cross_entropy_loss, tiny_split(), tiny_split(20, 1),
              config=TrainingConfig(epochs=1), env=CPU, pad_id=0, history={},
              checkpoint=tmp_path / "none", resume=True)


def test_a_corrupt_checkpoint_is_refused(tmp_path):
    config = TrainingConfig(epochs=1, batch_size=8)
    train(tiny_classifier(), cross_entropy_loss, tiny_split(), tiny_split(20, 1), config=config, env=CPU,
          pad_id=0, history={}, checkpoint=tmp_path / "c")
    (tmp_path / "c" / "last.safetensors").write_bytes(b"not a safetensors file")
    model = tiny_classifier()
    optimizer, scheduler = loop.build_optimizer(model, config, 10)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "c", model, optimizer, scheduler)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def loss_that_explodes_in_epoch_two(model, batch):
        calls["n"] += 1
        terms = cross_entropy_loss(model, batch)
        if calls["n"] > 5:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        train(tiny_classifier(), loss_that_explodes_in_epoch_two, tiny_split(), tiny_split(20, 1),
              config=TrainingConfig(epochs=3, batch_size=8), env=CPU, pad_id=0, history={},
              checkpoint=tmp_path / "ckpt")
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["epoch"] == 0, "the checkpoint of the last good epoch stays"


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


def test_checkpoint_lives_beside_the_runs():
    from pathlib import Path
    assert checkpoint_dir(Path("runs/odd")) == Path("runs/.checkpoints/odd")


def test_a_lora_checkpoint_holds_the_trainable_weights_and_checks_the_frozen_base(tmp_path):
    from lora.model import inject_lora, mark_only_lora_trainable
    from safetensors.torch import load_file

    def lora_classifier(seed):
        model = tiny_classifier(seed=seed)
        inject_lora(model, r=2)
        mark_only_lora_trainable(model)
        return model

    config = TrainingConfig(epochs=1, batch_size=8)
    model = lora_classifier(seed=0)
    train(model, cross_entropy_loss, tiny_split(), tiny_split(20, 1), config=config, env=CPU, pad_id=0,
          history={}, checkpoint=tmp_path / "c")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(load_file(tmp_path / "c" / "last.safetensors")) == trainable
    assert len(trainable) < len(model.state_dict()) / 2

    same_base = lora_classifier(seed=0)
    load_checkpoint(tmp_path / "c", same_base, *loop.build_optimizer(same_base, config, 10))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(same_base.state_dict()[name], value, rtol=0, atol=0)
    other_base = lora_classifier(seed=1)
    with pytest.raises(CheckpointError, match="different model"):
        load_checkpoint(tmp_path / "c", other_base, *loop.build_optimizer(other_base, config, 10))


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
                    history={}, checkpoint=tmp_path / "ckpt")

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


def test_epoch_seeds_of_two_run_seeds_never_share_a_dropout_stream(tmp_path, monkeypatch):
    seeds, real_manual_seed = [], torch.manual_seed

    def recorded(seed):
        seeds.append(seed)
        return real_manual_seed(seed)

    models = [tiny_classifier(), tiny_classifier()]  # (their initialisation seeds torch too)
    monkeypatch.setattr(torch, "manual_seed", recorded)
    for model, (run_seed, epochs) in zip(models, ((1, 2), (2, 1))):
        train(model, cross_entropy_loss, tiny_split(), tiny_split(20, 1),
              config=TrainingConfig(epochs=epochs, batch_size=8, seed=run_seed), env=CPU, pad_id=0,
              history={}, checkpoint=tmp_path / f"seed{run_seed}")
    seed_1_epochs, seed_2_epochs = seeds[:2], seeds[2:]
    assert len(seeds) == 3 and not set(seed_1_epochs) & set(seed_2_epochs), \
        "seed 1 epoch 1 must not replay the dropout of seed 2 epoch 0"
    assert seeds == [loop.epoch_seed(1, 0), loop.epoch_seed(1, 1), loop.epoch_seed(2, 0)]


def test_a_nan_in_the_first_epoch_says_no_checkpoint_was_saved(tmp_path):
    def nan_loss(model, batch):
        terms = cross_entropy_loss(model, batch)
        return {**terms, "loss": terms["loss"] * float("nan")}

    with pytest.raises(NonFiniteLossError) as error:
        train(tiny_classifier(), nan_loss, tiny_split(), tiny_split(20, 1), config=TrainingConfig(epochs=2, batch_size=8),
              env=CPU, pad_id=0, history={}, checkpoint=tmp_path / "ckpt")
    assert "no checkpoint of this run was saved" in str(error.value)
    assert str(tmp_path / "ckpt") not in str(error.value) and not (tmp_path / "ckpt").exists()


def test_a_finite_loss_with_a_non_finite_gradient_also_stops_the_run(tmp_path):
    def loss_with_an_infinite_gradient(model, batch):
        terms = cross_entropy_loss(model, batch)
        terms["loss"].register_hook(lambda grad: grad * float("inf"))  # the loss stays finite
        return terms

    with pytest.raises(NonFiniteLossError, match=r"the loss became [0-9.]+ \(gradient norm (inf|nan)\)"):
        train(tiny_classifier(), loss_with_an_infinite_gradient, tiny_split(), tiny_split(20, 1),
              config=TrainingConfig(epochs=1, batch_size=8), env=CPU, pad_id=0, history={},
              checkpoint=tmp_path / "ckpt")


def test_validation_runs_in_fp32_even_when_training_uses_bf16():
    model, split = tiny_classifier(), tiny_split(20, 1)
    in_bf16_run = loop.validate(model, split, 0, torch.device("cpu"), TrainingConfig(bf16=True))
    in_fp32_run = loop.validate(model, split, 0, torch.device("cpu"), TrainingConfig(bf16=False))
    assert in_bf16_run == in_fp32_run


def test_a_checkpoint_with_other_lora_shapes_is_refused_in_one_line(tmp_path):
    from lora.model import inject_lora, mark_only_lora_trainable

    def lora_classifier(r):
        model = tiny_classifier(seed=0)
        inject_lora(model, r=r)
        mark_only_lora_trainable(model)
        return model

    config = TrainingConfig(epochs=1, batch_size=8)
    train(lora_classifier(r=2), cross_entropy_loss, tiny_split(), tiny_split(20, 1), config=config, env=CPU,
          pad_id=0, history={}, checkpoint=tmp_path / "c")
    other_rank = lora_classifier(r=4)
    with pytest.raises(CheckpointError, match=r"weights of other shapes, e\.g\. .*lora_A \(2, 32\) vs \(4, 32\)"):
        load_checkpoint(tmp_path / "c", other_rank, *loop.build_optimizer(other_rank, config, 10))


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
