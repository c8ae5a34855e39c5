"""Every --method of train.py builds the model it claims: controls and baselines, on tiny models.

A control is only worth its row if it differs from the method it controls in exactly one thing,
so each is checked tensor for tensor against the teacher or the pretrained base it starts from,
and parameter by parameter for what trains.
"""
import json

import numpy as np
import pytest
import torch
from transformers import BertModel

import baselines.tfidf
import train
from baselines.tfidf import SETTINGS_FILE, TENSORS_FILE, TfidfClassifier, TfidfError
from conftest import save_teacher_and_base
from data.splits import Split, Splits
from lora.lora import LoRALinear
from report.scores import load_any_scorer
from train import RECIPES, build_model, parse_args


@pytest.fixture
def folders(tmp_path):
    """A fine-tuned 4-layer teacher and a pretrained 4-layer base without a pooler (like e5-small)."""
    return save_teacher_and_base(tmp_path, layers=4)


def built(method: str, folders: dict, seed: int = 0):
    args = parse_args(["--method", method, "--teacher", folders["teacher"], "--model", folders["base"]])
    torch.manual_seed(seed)  # the new head's initialisation, as train.py seeds it
    return build_model(args, RECIPES[method])


def trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def plain_state(model) -> dict[str, torch.Tensor]:
    """The weights under their plain BERT names: a LoRA layer's frozen ``.base.`` weight as the layer's own."""
    return {name.replace(".base.", "."): tensor for name, tensor in model.state_dict().items()
            if "lora_" not in name}


def assert_layers_copied(student, source_bert, layers):
    for slot, layer in enumerate(layers):
        copied = plain_state(student.bert.encoder.layer[slot])
        for name, tensor in source_bert.encoder.layer[layer - 1].state_dict().items():
            assert torch.equal(copied[name], tensor), (slot, layer, name)


def test_odd_ce_is_the_odd_student_with_cross_entropy_only(folders):
    odd, control = built("odd", folders), built("odd-ce", folders)
    teacher = odd.teacher
    assert control.layers == odd.layers == [1, 3]
    assert_layers_copied(control.model, teacher.bert, [1, 3])
    for module in ("bert.embeddings", "bert.pooler", "classifier"):  # the teacher's, head included
        for name, tensor in teacher.get_submodule(module).state_dict().items():
            assert torch.equal(control.model.get_submodule(module).state_dict()[name], tensor), (module, name)
    assert plain_state(control.model).keys() == plain_state(odd.model).keys()
    assert all(torch.equal(a, plain_state(odd.model)[n]) for n, a in plain_state(control.model).items())
    assert trainable(control.model) == trainable(odd.model) == {n for n, _ in control.model.named_parameters()}
    assert (RECIPES["odd-ce"].loss, RECIPES["odd"].loss) == ("ce", "kd")  # the one thing that differs


def test_lora_odd_is_lora_on_the_odd_students_start(folders):
    control, lora, odd = built("lora-odd", folders), built("lora", folders), built("odd", folders)
    wrapped = [name for name, module in control.model.named_modules() if isinstance(module, LoRALinear)]
    assert len(wrapped) == 2 * 2 and all(name.endswith(("query", "value")) for name in wrapped)  # same targets
    layer = control.model.get_submodule(wrapped[0])
    assert (layer.r, layer.alpha) == (8, 16.0)  # same r and alpha as lora
    assert_layers_copied(control.model, odd.teacher.bert, [1, 3])  # the frozen weights are the teacher's
    assert all(torch.equal(t, plain_state(odd.model)[n]) for n, t in plain_state(control.model).items())
    # B = 0: before training it computes exactly what the odd student computes.
    batch = {"input_ids": torch.tensor([[2, 5, 9, 14, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    control.model.eval(), odd.model.eval()
    torch.testing.assert_close(control.model(**batch).logits, odd.model(**batch).logits)
    # The same parameters train as in lora: the adapters and the head, nothing else.
    assert trainable(control.model) == trainable(lora.model)
    assert {n.split(".")[-1] for n in trainable(control.model) if "encoder" in n} == {"lora_A", "lora_B"}
    assert {n for n in trainable(control.model) if "encoder" not in n} == {
        "bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"}


def test_full_even_is_loras_start_with_every_weight_trained(folders):
    control, lora = built("full-even", folders, seed=3), built("lora", folders, seed=3)
    base = BertModel.from_pretrained(folders["base"], add_pooling_layer=False)
    assert control.layers == lora.layers == [2, 4]
    assert_layers_copied(control.model, base, [2, 4])
    for name, tensor in base.embeddings.state_dict().items():
        assert torch.equal(control.model.bert.embeddings.state_dict()[name], tensor)
    # Tensor for tensor the LoRA student's start (same seed: the same new head), without adapters.
    assert plain_state(control.model).keys() == plain_state(lora.model).keys()
    assert all(torch.equal(t, plain_state(lora.model)[n]) for n, t in plain_state(control.model).items())
    assert not any(isinstance(m, LoRALinear) for m in control.model.modules())
    assert trainable(control.model) == {n for n, _ in control.model.named_parameters()}


def test_minilm_starts_from_the_whole_pretrained_model_with_a_new_head(folders):
    args = parse_args(["--method", "minilm"])
    assert args.model == "minilm" and RECIPES["minilm"].start == "pretrained"
    args.model = folders["base"]  # the tiny base stands in for the embedded model
    result = build_model(args, RECIPES["minilm"])
    assert result.teacher is None and len(result.model.bert.encoder.layer) == 4
    assert_layers_copied(result.model, BertModel.from_pretrained(folders["base"]), [1, 2, 3, 4])
    assert trainable(result.model) == {n for n, _ in result.model.named_parameters()}


# ---------------------------------------------------------------------------- the TF-IDF baseline

def comments(words: list[str], size: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(size):
        toxic = i % 3 == 0
        chosen = list(rng.choice(words, 5)) + (["idiot" if i % 2 else "moron"] if toxic else [])
        texts.append(" ".join(chosen))
        labels.append(int(toxic))
    return Split(texts, labels)


def test_tfidf_makes_no_choice_with_the_test_split(tmp_path, monkeypatch):
    """Two runs whose test splits differ in every text and label write byte-identical models."""
    words = "thanks for the reply great point agree with your comment nice work kind fair author".split()
    unseen = [f"zzz{i}" for i in range(30)]  # n-grams only the test comments contain, each many times
    tests = {"a": comments(words, 40, 9), "b": Split([" ".join(unseen[i % 30:] * 2) for i in range(40)],
                                                      [1 - label for label in comments(words, 40, 9).labels])}
    saved = {}
    for name, test in tests.items():
        monkeypatch.setattr(baselines.tfidf, "load_splits", lambda *a, test=test, **k: Splits(
            comments(words, 120, 0), comments(words, 40, 1), test, source="synthetic"))
        out = tmp_path / name
        baselines.tfidf.main(["--out", str(out)])
        saved[name] = {file: (out / file).read_bytes() for file in (SETTINGS_FILE, TENSORS_FILE)}
        history = json.loads((out / "history.json").read_text())
        search = history["c_search"]
        best = max(search, key=lambda row: row["validation_roc_auc"])
        assert TfidfClassifier.load(out).c == best["c"]  # C is the validation-best of the grid
        vocabulary = json.loads(saved[name][SETTINGS_FILE])["word"]["vocabulary"]
        assert not any(term.startswith("zzz") for term in vocabulary)
        assert history["epochs"][-1]["train_terms"]["ce"] == history["epochs"][-1]["train_loss"] > 0
    assert saved["a"] == saved["b"]


def test_a_saved_tfidf_run_scores_like_the_fitted_model_and_rejects_corruption(tmp_path, monkeypatch):
    words = "thanks for the reply great point agree with your comment".split()
    monkeypatch.setattr(baselines.tfidf, "load_splits", lambda *a, **k: Splits(
        comments(words, 90, 0), comments(words, 30, 1), comments(words, 30, 2), source="synthetic"))
    baselines.tfidf.main(["--out", str(tmp_path / "tfidf")])
    scorer = load_any_scorer(tmp_path / "tfidf", {})
    probs = scorer.predict(["you idiot thanks", "great point"], 1)
    assert probs[0] > 0.5 > probs[1]
    model = TfidfClassifier.load(tmp_path / "tfidf")
    assert scorer.num_parameters == model.coef.size + 1
    (tmp_path / "tfidf" / TENSORS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(TfidfError, match="does not hold a readable TF-IDF baseline"):
        TfidfClassifier.load(tmp_path / "tfidf")
    assert "error: tfidf is no network; python -m baselines.tfidf" in str(
        pytest.raises(SystemExit, train.main, ["--method", "tfidf"]).value)
