import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel

from distill import DistillError
from distill.student import build_student, build_student_from_base, parse_layers


def tiny_config(num_layers: int) -> BertConfig:
    return BertConfig(vocab_size=100, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                      num_hidden_layers=num_layers, max_position_embeddings=64)


def tiny_teacher(num_layers: int, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config(num_layers)).eval()


def tiny_batch():
    torch.manual_seed(1)
    input_ids = torch.randint(5, 100, (3, 10))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 7:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name]), name


# ---- parse_layers / validate_layers

@pytest.mark.parametrize("depth, odd, even", [
    (12, [1, 3, 5, 7, 9, 11], [2, 4, 6, 8, 10, 12]),
    (4, [1, 3], [2, 4]),
    (5, [1, 3, 5], [2, 4]),
])
def test_odd_and_even_are_one_based_halves(depth, odd, even):
    assert parse_layers("odd", depth) == odd
    assert parse_layers(" EVEN ", depth) == even


def test_explicit_list_is_read_in_order():
    assert parse_layers("1,4,7", 12) == [1, 4, 7]
    assert parse_layers(" 2 , 12 ", 12) == [2, 12]


@pytest.mark.parametrize("spec, message", [
    ("0,3", "layer 0 in [0, 3] is out of range"),
    ("1,13", "layer 13 in [1, 13] is out of range: the source model has layers 1 to 12"),
    ("-1", "layer -1 in [-1] is out of range"),
    ("3,3,5", "layer 3 appears more than once"),
    ("5,3,1", "are not in increasing order"),
    ("", "the layer spec is empty"),
    ("   ", "the layer spec is empty"),
    ("1,,3", "'' in the layer spec '1,,3' is not a layer number"),
    ("first", "'first' in the layer spec 'first' is not a layer number"),
    ("1.5", "'1.5' in the layer spec '1.5' is not a layer number"),
])
def test_bad_layer_specs_fail_with_their_reason(spec, message):
    with pytest.raises(DistillError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_layers(spec, 12)


def test_even_of_a_one_layer_teacher_is_empty_and_rejected():
    with pytest.raises(DistillError, match="no layers selected"):
        parse_layers("even", 1)


def test_layer_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse_layers("7", 4)


# ---- build_student

@pytest.mark.parametrize("depth", [4, 12])
@pytest.mark.parametrize("spec", ["odd", "even"])
def test_student_layer_k_is_a_copy_of_teacher_layer_k(depth, spec):
    teacher = tiny_teacher(depth)
    layers = parse_layers(spec, depth)
    student = build_student(teacher, layers)

    assert student.config.num_hidden_layers == len(layers) == len(student.bert.encoder.layer)
    for slot, layer in enumerate(layers):
        assert_same_weights(student.bert.encoder.layer[slot], teacher.bert.encoder.layer[layer - 1])
    assert_same_weights(student.bert.embeddings, teacher.bert.embeddings)
    assert_same_weights(student.bert.pooler, teacher.bert.pooler)
    assert_same_weights(student.classifier, teacher.classifier)
    assert teacher.config.num_hidden_layers == depth  # the teacher's config was copied, not edited


def test_odd_and_even_students_differ():
    teacher = tiny_teacher(4)
    odd, even = build_student(teacher, [1, 3]), build_student(teacher, [2, 4])
    first_odd = odd.bert.encoder.layer[0].attention.self.query.weight
    first_even = even.bert.encoder.layer[0].attention.self.query.weight
    assert not torch.equal(first_odd, first_even)


def test_student_shares_no_storage_with_the_teacher():
    teacher = tiny_teacher(4)
    student = build_student(teacher, [2, 4])
    teacher_storage = {p.data_ptr() for p in teacher.parameters()}
    assert not teacher_storage & {p.data_ptr() for p in student.parameters()}

    student_before = {name: t.clone() for name, t in student.state_dict().items()}
    with torch.no_grad():
        for parameter in teacher.parameters():
            parameter.add_(1.0)
    for name, tensor in student.state_dict().items():
        assert torch.equal(tensor, student_before[name]), name


def test_keeping_every_layer_reproduces_the_teacher_exactly():
    # Nothing is forgotten in the copy (position and token-type embeddings, LayerNorms, ...).
    teacher = tiny_teacher(4)
    student = build_student(teacher, [1, 2, 3, 4]).eval()
    batch = tiny_batch()
    with torch.no_grad():
        assert torch.equal(student(**batch).logits, teacher(**batch).logits)


def test_student_forward_runs_and_differs_from_the_teacher():
    teacher = tiny_teacher(12)
    student = build_student(teacher, parse_layers("odd", 12)).eval()
    batch = tiny_batch()
    with torch.no_grad():
        student_logits, teacher_logits = student(**batch).logits, teacher(**batch).logits
    assert student_logits.shape == teacher_logits.shape == (3, 2)
    assert torch.isfinite(student_logits).all()
    assert not torch.allclose(student_logits, teacher_logits)


def test_build_student_validates_its_inputs():
    teacher = tiny_teacher(4)
    with pytest.raises(DistillError, match="layer 5 in \\[1, 5\\] is out of range"):
        build_student(teacher, [1, 5])
    with pytest.raises(DistillError, match="not in increasing order"):
        build_student(teacher, [3, 1])
    with pytest.raises(DistillError, match="must be a BertForSequenceClassification, got BertModel"):
        build_student(teacher.bert, [1, 3])


# ---- build_student_from_base

def saved_base(folder, *, with_pooler: bool, depth: int = 4) -> BertModel:
    torch.manual_seed(2)
    base = BertModel(tiny_config(depth), add_pooling_layer=with_pooler)
    base.save_pretrained(folder)
    return base


def test_base_without_pooler_gets_a_new_pooler_and_classifier(tmp_path):
    base = saved_base(tmp_path, with_pooler=False)
    student, new_head_modules = build_student_from_base(tmp_path, [2, 4])

    assert new_head_modules == ("bert.pooler", "classifier")
    assert all(student.get_submodule(name) is not None for name in new_head_modules)
    assert student.config.num_hidden_layers == 2 and student.classifier.out_features == 2
    assert_same_weights(student.bert.embeddings, base.embeddings)
    assert_same_weights(student.bert.encoder.layer[0], base.encoder.layer[1])
    assert_same_weights(student.bert.encoder.layer[1], base.encoder.layer[3])


def test_base_with_pooler_keeps_its_pretrained_pooler(tmp_path):
    base = saved_base(tmp_path, with_pooler=True)
    student, new_head_modules = build_student_from_base(tmp_path, [1, 3], num_labels=3)

    assert new_head_modules == ("classifier",)
    assert_same_weights(student.bert.pooler, base.pooler)
    assert student.classifier.out_features == 3


def test_base_route_never_reuses_a_fine_tuned_classifier(tmp_path):
    fine_tuned = tiny_teacher(4)
    with torch.no_grad():
        fine_tuned.classifier.weight.fill_(0.5)
    fine_tuned.save_pretrained(tmp_path)
    student, new_head_modules = build_student_from_base(tmp_path, [1, 2, 3, 4])

    assert new_head_modules == ("classifier",)
    assert not torch.equal(student.classifier.weight, fine_tuned.classifier.weight)
    assert_same_weights(student.bert.pooler, fine_tuned.bert.pooler)


def test_base_route_errors_are_clear(tmp_path):
    with pytest.raises(DistillError, match="cannot read a model config"):
        build_student_from_base(tmp_path / "missing", [1])
    saved_base(tmp_path, with_pooler=False)
    with pytest.raises(DistillError, match="layer 5 in \\[1, 5\\] is out of range: the source model has layers 1 to 4"):
        build_student_from_base(tmp_path, [1, 5])


# ---------------------------------------------------------------- found by mutation testing

def test_the_student_config_is_a_deep_copy():
    teacher = tiny_teacher(4)
    student = build_student(teacher, [1, 3])
    student.config.id2label[0] = "changed"
    assert teacher.config.id2label[0] != "changed" and teacher.config.num_hidden_layers == 4


def test_a_bf16_teacher_gives_an_exact_bf16_student():
    teacher = tiny_teacher(4).to(torch.bfloat16)
    student = build_student(teacher, [2, 4])
    assert student.dtype == torch.bfloat16
    assert_same_weights(student.bert.encoder.layer[1], teacher.bert.encoder.layer[3])


def test_a_base_that_is_not_bert_or_not_complete_is_refused(tmp_path):
    from transformers import GPT2Config
    GPT2Config(n_layer=2, n_embd=32, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(DistillError, match=r"holds a 'gpt2' model; a student needs a BERT encoder"):
        build_student_from_base(tmp_path / "gpt2", [1])
    tiny_config(4).save_pretrained(tmp_path / "no-weights")
    with pytest.raises(DistillError, match="cannot load the BERT weights in"):
        build_student_from_base(tmp_path / "no-weights", [1])
    base = saved_base(tmp_path / "partial", with_pooler=True)
    from safetensors.torch import load_file, save_file
    weights = load_file(tmp_path / "partial" / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "layer.3." not in k}, tmp_path / "partial" / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(DistillError, match=r"has no pretrained weights for .*layer\.3.*not a complete BERT encoder"):
        build_student_from_base(tmp_path / "partial", [1, 2])
    assert base is not None
