"""LoRA by hand: exactness at injection, merging, frozen weights, the adapter file, bad inputs."""
import copy
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

from serving.adapter import apply_adapter, load_adapter, load_lora_state_dict
from lora.lora import (LoRAError, LoRALinear, count_parameters, inject_lora, lora_state_dict, mark_only_lora_trainable,
                       merge_lora, save_adapter)
from report.model_card import method_lines

# Every linear layer of a BERT encoder layer (the ablation's lora-all-linear point).
ALL_LINEAR = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")

TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64)


def tiny_bert(seed: int = 0, **overrides) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**{**TINY, **overrides})).eval()


def logits(model: nn.Module, batch: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def randomise_adapters(model: nn.Module, seed: int = 1) -> None:
    """Give every B a random value, so ΔW ≠ 0 and the LoRA path really changes the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALinear):
                module.lora_B.copy_(0.1 * torch.randn(module.lora_B.shape, generator=generator))


@pytest.fixture
def batch() -> dict:
    input_ids = torch.randint(0, TINY["vocab_size"], (3, 7), generator=torch.Generator().manual_seed(0))
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


@pytest.fixture
def tuned() -> BertForSequenceClassification:
    """A tiny BERT with r=4 adapters on query and value that are no longer zero."""
    model = tiny_bert()
    inject_lora(model, r=4, alpha=8)
    randomise_adapters(model)
    return model.eval()


def test_fresh_injection_computes_exactly_what_the_base_did(batch):
    base = tiny_bert()
    adapted = copy.deepcopy(base)
    assert inject_lora(adapted, r=8, alpha=16) == 4  # 2 layers × (query, value)
    adapted.eval()
    assert torch.equal(logits(adapted, batch), logits(base, batch))
    query = adapted.bert.encoder.layer[0].attention.self.query
    assert not query.base.weight.requires_grad and not query.base.bias.requires_grad
    assert query.lora_A.shape == (8, 32) and query.lora_B.shape == (32, 8) and query.scaling == 2.0


def test_only_query_and_value_are_wrapped(tuned):
    for layer in tuned.bert.encoder.layer:
        assert isinstance(layer.attention.self.query, LoRALinear)
        assert isinstance(layer.attention.self.value, LoRALinear)
        for untouched in (layer.attention.self.key, layer.attention.output.dense,
                          layer.intermediate.dense, layer.output.dense):
            assert type(untouched) is nn.Linear
    assert type(tuned.bert.pooler.dense) is nn.Linear and type(tuned.classifier) is nn.Linear


def test_dropout_touches_only_the_lora_path():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    layer = LoRALinear(copy.deepcopy(base), r=4, alpha=8, dropout=0.5).train()
    x = torch.randn(5, 16)
    assert torch.equal(layer(x), base(x))  # B = 0: with dropout on, the frozen path is still exact


def test_merge_folds_delta_w_into_the_weight_once_and_computes_the_same():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 8), r=4, alpha=8).eval()
    nn.init.normal_(layer.lora_B)
    original = layer.base.weight.detach().clone()
    x = torch.randn(5, 16)
    unmerged = layer(x)
    layer.merge()
    layer.merge()  # a second merge must not add ΔW twice
    assert layer.merged and "merged=True" in repr(layer)
    torch.testing.assert_close(layer.base.weight, original + layer.lora_B @ layer.lora_A * 2.0)
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=0)


def test_merged_model_agrees_with_the_unmerged_one(tuned, batch):
    unmerged = logits(tuned, batch)
    for module in tuned.modules():
        if isinstance(module, LoRALinear):
            module.merge()
    torch.testing.assert_close(logits(tuned, batch), unmerged, atol=1e-5, rtol=0)


def test_only_lora_and_head_learn(tuned, batch):
    mark_only_lora_trainable(tuned, extra_trainable_modules=("classifier",))
    trainable = {name for name, p in tuned.named_parameters() if p.requires_grad}
    assert len(trainable) == 4 * 2 + 2  # A and B of 4 layers, classifier weight and bias
    assert all(name.endswith(("lora_A", "lora_B")) or name.startswith("classifier.") for name in trainable)
    frozen = {name: p.detach().clone() for name, p in tuned.named_parameters() if not p.requires_grad}
    before = {name: p.detach().clone() for name, p in tuned.named_parameters() if p.requires_grad}

    tuned.train()
    optimiser = torch.optim.AdamW(tuned.parameters(), lr=1e-2, weight_decay=0.1)
    tuned(**batch, labels=torch.tensor([0, 1, 1])).loss.backward()
    assert {name for name, p in tuned.named_parameters() if p.grad is not None} == trainable
    optimiser.step()

    parameters = dict(tuned.named_parameters())
    assert all(torch.equal(parameters[name], value) for name, value in frozen.items())
    assert all(not torch.equal(parameters[name], value) for name, value in before.items())


def test_adapter_round_trip_reproduces_the_outputs(batch, tmp_path):
    base = tiny_bert()
    tuned = copy.deepcopy(base)
    inject_lora(tuned, r=4, alpha=8, dropout=0.05)
    randomise_adapters(tuned)
    nn.init.normal_(tuned.classifier.weight)  # the head is trained too, so it must travel in the file
    tuned.eval()

    path = save_adapter(tmp_path / "adapter.safetensors", tuned, r=4, alpha=8, targets=("query", "value"),
                        base_model="tiny-bert", layers=[0, 1], head_modules=("classifier",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.safetensors"]  # no temp file left
    state, meta = load_adapter(path)
    assert meta == {"format": "distil-vs-lora-adapter/1", "r": 4, "alpha": 8.0, "targets": ["query", "value"],
                    "base_model": "tiny-bert", "layers": [0, 1], "dropout": 0.05, "head_modules": ["classifier"],
                    "rslora": False}
    assert len(state) == 4 * 2 + 2 and all("lora_" in name or "classifier" in name for name in state)

    restored = apply_adapter(copy.deepcopy(base), state, meta).eval()
    assert torch.equal(logits(restored, batch), logits(tuned, batch))
    assert not torch.equal(logits(base, batch), logits(tuned, batch))


def test_merged_model_is_an_ordinary_hugging_face_folder(tuned, batch, tmp_path):
    expected = logits(tuned, batch)
    merged = merge_lora(tuned)
    assert not any(isinstance(module, LoRALinear) for module in merged.modules())
    merged.save_pretrained(tmp_path / "merged")
    with safe_open(tmp_path / "merged" / "model.safetensors", framework="pt") as file:
        keys = set(file.keys())
    assert "bert.encoder.layer.0.attention.self.query.weight" in keys
    assert not any("lora" in key or ".base." in key for key in keys)

    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    torch.testing.assert_close(logits(reloaded, batch), expected, atol=1e-5, rtol=0)


def test_trainable_share_on_the_e5_small_shape():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=47284, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=1536)
    model = BertForSequenceClassification(config)
    inject_lora(model, r=8, alpha=16)
    # The e5 checkpoint has no pooler weights: the pooler starts random, so it is trained with the head.
    mark_only_lora_trainable(model, extra_trainable_modules=("classifier", "bert.pooler"))
    trainable, total = count_parameters(model)
    lora = 6 * 2 * (8 * 384 + 384 * 8)
    pooler, classifier = 384 * 384 + 384, 384 * 2 + 2
    assert trainable == lora + pooler + classifier
    share = trainable / total
    print(f"\ntrainable share, e5-small shape, r=8 on query+value + pooler + classifier: "
          f"{trainable:,} / {total:,} = {share:.2%}")
    assert share <= 0.03


def test_no_matching_target_is_a_clear_error():
    model = tiny_bert()
    with pytest.raises(LoRAError, match=r"no linear layer of an encoder layer named \['q_proj'\].*'attention.self.query'"):
        inject_lora(model, targets=("q_proj",))
    assert not any(isinstance(module, LoRALinear) for module in model.modules())  # nothing half-injected


def test_corrupt_or_foreign_adapter_files_are_rejected(tuned, tmp_path):
    good = save_adapter(tmp_path / "good.safetensors", tuned, r=4, alpha=8, targets=("query", "value"),
                        base_model="tiny-bert")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00not a safetensors file at all")
    for broken in (truncated, garbage):
        with pytest.raises(LoRAError, match="truncated or corrupt"):
            load_adapter(broken)

    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(LoRAError, match="not a distil-vs-lora adapter"):
        load_adapter(foreign)
    with pytest.raises(LoRAError, match="no adapter file"):
        load_adapter(tmp_path / "missing.safetensors")


def test_adapter_that_does_not_fit_the_model_is_rejected(tuned, tmp_path):
    state, meta = load_adapter(save_adapter(tmp_path / "adapter.safetensors", tuned, r=4, alpha=8,
                                            targets=("query", "value"), base_model="tiny-bert"))
    with pytest.raises(LoRAError, match=r"shape mismatches \(9\)"):  # wider base: every A and B, the head weight
        apply_adapter(tiny_bert(hidden_size=48), state, meta)

    other_rank = tiny_bert()
    inject_lora(other_rank, r=2, alpha=8)
    with pytest.raises(LoRAError, match="shape mismatches"):
        load_lora_state_dict(other_rank, state)

    more_targets = tiny_bert()
    inject_lora(more_targets, targets=("query", "key", "value"), r=4, alpha=8)
    with pytest.raises(LoRAError, match="LoRA keys missing from the adapter"):
        load_lora_state_dict(more_targets, state)

    with pytest.raises(LoRAError, match="keys the model lacks"):
        load_lora_state_dict(more_targets, {**lora_state_dict(more_targets), "bert.nonexistent.lora_A": torch.zeros(1)})


def test_lora_works_under_bfloat16_autocast(tuned, batch):
    layer = tuned.bert.encoder.layer[0].attention.self.query
    x = torch.randn(5, 32)
    expected = layer(x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = layer(x)
        loss = tuned(**batch, labels=torch.tensor([0, 1, 1])).loss
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, atol=0.05, rtol=0.05)
    loss.backward()
    assert layer.lora_B.grad.dtype == torch.float32 and layer.lora_B.grad.abs().sum() > 0


def test_extra_trainable_modules_match_whole_path_components_not_substrings(tuned):
    mark_only_lora_trainable(tuned, extra_trainable_modules=("bert.pooler",))
    trainable = {name for name, p in tuned.named_parameters() if p.requires_grad}
    assert {name for name in trainable if "lora_" not in name} == {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    # "dense" is a substring of every feed-forward layer's name, but the path of no module: refused,
    # instead of unfreezing the whole feed-forward network.
    with pytest.raises(LoRAError, match=r"no module with parameters at \['dense'\]"):
        mark_only_lora_trainable(tuned, extra_trainable_modules=("dense",))


def test_an_adapter_without_its_head_is_refused_instead_of_loading_a_random_head(tuned, tmp_path):
    base = tiny_bert()
    for head_modules, dropped in ((("classifier",), "classifier."), (("bert.pooler", "classifier"), "bert.pooler.")):
        path = save_adapter(tmp_path / "adapter.safetensors", tuned, r=4, alpha=8, targets=("query", "value"),
                            base_model="tiny-bert", head_modules=head_modules)
        state, meta = load_adapter(path)
        assert meta["head_modules"] == list(head_modules)
        headless = {name: tensor for name, tensor in state.items() if not name.startswith(dropped)}
        with pytest.raises(LoRAError, match=f"head keys missing from the adapter.*{dropped}"):
            apply_adapter(copy.deepcopy(base), headless, meta)
        apply_adapter(copy.deepcopy(base), state, meta)  # the complete file loads


# ---------------------------------------------------------------- found by mutation testing

def test_a_bare_lora_layer_has_no_dropout_and_rank_one_is_allowed():
    base = nn.Linear(16, 8)
    layer = LoRALinear(base, r=1, alpha=2).train()
    assert layer.lora_dropout.p == 0.0 and layer.lora_A.shape == (1, 16)
    assert "merged=False" in repr(layer)


def test_a_is_initialised_like_nn_linear_and_b_at_zero():
    """kaiming_uniform_(a=sqrt(5)) draws A from U(-1/sqrt(in), 1/sqrt(in)), nn.Linear's own default."""
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(256, 64), r=16, alpha=16)
    bound = 1 / 256 ** 0.5
    assert layer.lora_A.abs().max() <= bound and layer.lora_A.abs().max() > 0.99 * bound
    assert torch.count_nonzero(layer.lora_B) == 0


def test_the_adapter_takes_the_base_weights_dtype():
    layer = LoRALinear(nn.Linear(16, 8).to(torch.bfloat16), r=2, alpha=4)
    assert layer.lora_A.dtype == layer.lora_B.dtype == torch.bfloat16


def test_module_names_may_be_one_string_and_errors_name_what_exists():
    model = tiny_bert()
    inject_lora(model, targets="query", r=2)
    assert {name.rpartition(".")[0].rpartition(".")[2] for name, _ in model.named_parameters() if "lora_A" in name} == {"query"}
    mark_only_lora_trainable(model, "classifier")
    assert {name for name, p in model.named_parameters() if p.requires_grad and "lora" not in name} == {
        "classifier.weight", "classifier.bias"}
    with pytest.raises(LoRAError, match=r"no module with parameters at \['head'\] in BertForSequenceClassification: "
                                        r".*\(top-level modules: \['bert', 'classifier'\]\)"):
        mark_only_lora_trainable(model, ["head"])
    with pytest.raises(LoRAError, match=r"^no linear layer of an encoder layer named \['nope'\] in BertForSequenceClassification; "):
        inject_lora(tiny_bert(), targets=["query", "nope"])
    with pytest.raises(LoRAError, match=r"^no linear layer of an encoder layer named \[\] in BertForSequenceClassification; "):
        inject_lora(tiny_bert(), targets=[])


def test_a_failed_adapter_save_leaves_no_temporary_file_and_the_old_adapter(tuned, tmp_path, monkeypatch):
    import lora.lora
    path = save_adapter(tmp_path / "adapter.safetensors", tuned, r=4, alpha=8, targets=["query", "value"],
                        base_model="tiny")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(lora.lora, "save_file", disk_full)
    with pytest.raises(OSError, match="disk full"):
        save_adapter(path, tuned, r=4, alpha=8, targets=["query", "value"], base_model="tiny")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["adapter.safetensors"]


# ---- rsLoRA and more targets (the LoRA capacity ablations)

def test_rslora_scales_by_alpha_over_sqrt_r_and_the_default_stays_alpha_over_r():
    base = nn.Linear(16, 8)
    plain, stable = LoRALinear(copy.deepcopy(base), r=32, alpha=16), LoRALinear(copy.deepcopy(base), r=32, alpha=16,
                                                                                rslora=True)
    assert plain.scaling == 16 / 32 and not plain.rslora
    assert stable.scaling == 16 / math.sqrt(32) and stable.rslora
    with torch.no_grad():
        stable.lora_B.normal_()
    x = torch.randn(5, 16)
    by_hand = base(x) + x @ stable.lora_A.T @ stable.lora_B.T * 16 / 32 ** 0.5
    torch.testing.assert_close(stable.eval()(x), by_hand)
    torch.testing.assert_close(stable.delta_weight(), stable.lora_B @ stable.lora_A * 16 / 32 ** 0.5)


def test_merged_rslora_model_agrees_with_the_unmerged_one(batch):
    model = tiny_bert()
    inject_lora(model, r=8, alpha=16, rslora=True)
    randomise_adapters(model)
    expected = logits(model.eval(), batch)
    torch.testing.assert_close(logits(merge_lora(model), batch), expected, atol=1e-5, rtol=0)


def test_the_adapter_file_records_the_rslora_scaling_and_a_reload_reproduces_it(batch, tmp_path):
    base = tiny_bert()
    tuned = copy.deepcopy(base)
    inject_lora(tuned, targets=ALL_LINEAR, r=8, alpha=16, rslora=True)
    randomise_adapters(tuned)
    tuned.eval()
    path = save_adapter(tmp_path / "adapter.safetensors", tuned, r=8, alpha=16, rslora=True, targets=ALL_LINEAR,
                        base_model="tiny")
    with safe_open(path, framework="pt") as file:
        raw = file.metadata()
    assert raw["rslora"] == "true" and float(raw["scaling"]) == pytest.approx(16 / 8 ** 0.5)
    state, meta = load_adapter(path)
    assert meta["rslora"] is True
    assert meta["targets"] == ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
    restored = apply_adapter(copy.deepcopy(base), state, meta).eval()
    assert {m.scaling for m in restored.modules() if isinstance(m, LoRALinear)} == {16 / 8 ** 0.5}
    assert torch.equal(logits(restored, batch), logits(tuned, batch))


def test_all_linear_wraps_the_six_linears_of_every_encoder_layer_and_never_the_head():
    model = tiny_bert()
    assert inject_lora(model, targets=ALL_LINEAR) == 2 * 6
    wrapped = {name for name, module in model.named_modules() if isinstance(module, LoRALinear)}
    assert {name.split(".", 4)[4] for name in wrapped} == {
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense"}
    assert isinstance(model.bert.pooler.dense, nn.Linear) and isinstance(model.classifier, nn.Linear)


def test_a_target_is_a_whole_path_inside_the_encoder_layer_or_its_last_name():
    model = tiny_bert()
    assert inject_lora(model, targets=["intermediate.dense"]) == 2
    assert all(isinstance(layer.intermediate.dense, LoRALinear) and isinstance(layer.output.dense, nn.Linear)
               for layer in model.bert.encoder.layer)
    # "output.dense" is the feed-forward output: not attention's output projection, whose path also ends so.
    model = tiny_bert()
    assert inject_lora(model, targets=["output.dense"]) == 2
    assert all(isinstance(layer.output.dense, LoRALinear) and isinstance(layer.attention.output.dense, nn.Linear)
               for layer in model.bert.encoder.layer)
    model = tiny_bert()
    assert inject_lora(model, targets=["attention.output.dense", "attention.self.key"]) == 4
    assert all(isinstance(layer.attention.output.dense, LoRALinear) and isinstance(layer.output.dense, nn.Linear)
               and isinstance(layer.attention.self.key, LoRALinear) for layer in model.bert.encoder.layer)
    with pytest.raises(LoRAError, match=r"no linear layer of an encoder layer named \['uery'\]"):
        inject_lora(tiny_bert(), targets=["uery"])
    # The head has no pretrained value to adapt: it trains in full, so no target reaches it.
    for head in ("classifier", "bert.pooler.dense", "pooler.dense", "self.query"):
        with pytest.raises(LoRAError, match=rf"named \['{head}'\]"):
            inject_lora(tiny_bert(), targets=[head])


def test_the_model_card_states_the_scaling_rule_and_its_value():
    for rslora, rule in ((False, "α/r = 16/32 = 0.5"), (True, "rsLoRA α/√r = 16/√32 = 2.83")):
        card = method_lines({"method": "lora", "layers": [2, 4], "args": {
            "lora_r": 32, "lora_alpha": 16.0, "lora_rslora": rslora, "lora_targets": "query,value", "model": "e5-small"}})
        assert f"rank 32, scaling {rule}, on query,value" in card
