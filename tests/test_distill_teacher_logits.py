"""The teacher-logit cache: one teacher pass per (teacher weights, training data), logits in example order."""
import pytest
import torch

import distill.teacher_logits as teacher_logits
from conftest import TINY_WORDS, tiny_classifier, tiny_tokenizer
from distill import DistillError
from distill.teacher_logits import cache_key, cached_teacher_logits
from test_training import CPU, tiny_split
from training.loop import EncodedSplit


@pytest.fixture
def teacher_dir(tmp_path):
    folder = tmp_path / "teacher"
    tiny_classifier(layers=2, seed=0).save_pretrained(folder)
    return folder


@pytest.fixture
def passes(monkeypatch) -> list[int]:
    """Count the teacher passes: one entry (the number of examples) per real computation."""
    calls, real = [], teacher_logits.predict_logits

    def counted(model, split, *args, **kwargs):
        calls.append(len(split.labels))
        return real(model, split, *args, **kwargs)

    monkeypatch.setattr(teacher_logits, "predict_logits", counted)
    return calls


def cached(teacher, teacher_dir, split, cache_dir):
    return cached_teacher_logits(teacher, teacher_dir, split, cache_dir, pad_id=0, env=CPU)


def test_the_second_run_reads_the_cache_instead_of_running_the_teacher(teacher_dir, tmp_path, passes, capsys):
    teacher, split = tiny_classifier(layers=2, seed=0), tiny_split(30)
    first = cached(teacher, teacher_dir, split, tmp_path / "cache")
    assert f"cached teacher logits for 30 examples in {tmp_path / 'cache'}" in capsys.readouterr().out
    second = cached(teacher, teacher_dir, split, tmp_path / "cache")
    assert passes == [30], "the teacher ran once; the second call was a cache hit"
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        f"teacher-logits-{cache_key(teacher_dir, split)}.safetensors"], "one file, no partial file left"


def test_another_teacher_or_other_data_misses_the_cache(teacher_dir, tmp_path, passes):
    teacher, split = tiny_classifier(layers=2, seed=0), tiny_split(30)
    cached(teacher, teacher_dir, split, tmp_path / "cache")

    other_dir = tmp_path / "other-teacher"
    other_teacher = tiny_classifier(layers=2, seed=1)
    other_teacher.save_pretrained(other_dir)
    from_other_teacher = cached(other_teacher, other_dir, split, tmp_path / "cache")
    assert not torch.allclose(from_other_teacher, cached(teacher, teacher_dir, split, tmp_path / "cache"))

    one_token_changed = EncodedSplit([list(ids) for ids in split.token_ids], split.labels)
    one_token_changed.token_ids[-1][1] += 1
    cached(teacher, teacher_dir, one_token_changed, tmp_path / "cache")
    assert passes == [30, 30, 30], "a new teacher and a changed token each ran the teacher again"
    assert len(list((tmp_path / "cache").iterdir())) == 3


def test_the_key_depends_on_the_weights_and_on_every_token_id_in_order(teacher_dir, tmp_path):
    split = EncodedSplit([[2, 5, 6, 3], [2, 7, 3]], [0, 1])
    key = cache_key(teacher_dir, split)
    assert key == cache_key(teacher_dir, EncodedSplit([[2, 5, 6, 3], [2, 7, 3]], [1, 1])), \
        "labels are not teacher inputs"
    assert len({key,
                cache_key(teacher_dir, EncodedSplit([[2, 7, 3], [2, 5, 6, 3]], [0, 1])),  # order
                cache_key(teacher_dir, EncodedSplit([[2, 5], [6, 3, 2, 7, 3]], [0, 1])),  # boundaries
                cache_key(teacher_dir, EncodedSplit([[2, 5, 6, 3]], [0]))}) == 4  # fewer examples
    same_bytes_elsewhere = tmp_path / "copy"
    same_bytes_elsewhere.mkdir()
    (same_bytes_elsewhere / "model.safetensors").write_bytes((teacher_dir / "model.safetensors").read_bytes())
    assert cache_key(same_bytes_elsewhere, split) == key, "the weights, not the folder's name, identify the teacher"


def test_cached_logits_are_in_example_order_not_batch_order(teacher_dir, tmp_path):
    teacher, split = tiny_classifier(layers=2, seed=0), tiny_split(70)
    assert len({len(ids) for ids in split.token_ids}) > 5, "lengths vary, so batching by length reorders"
    logits = cached(teacher, teacher_dir, split, tmp_path / "cache")
    with torch.inference_mode():
        one_by_one = torch.cat([teacher(input_ids=torch.tensor([ids])).logits for ids in split.token_ids])
    torch.testing.assert_close(logits, one_by_one, rtol=1e-4, atol=1e-5)
    from_file = cached(teacher, teacher_dir, split, tmp_path / "cache")
    torch.testing.assert_close(from_file, one_by_one, rtol=1e-4, atol=1e-5)


def test_two_builders_of_one_cache_at_once_do_not_clash(teacher_dir, tmp_path, monkeypatch):
    """A second run builds the same cache file while the first is between writing and renaming it."""
    teacher, split = tiny_classifier(layers=2, seed=0), tiny_split(30)
    real_save_file, builders = teacher_logits.save_file, []

    def save_then_let_another_builder_run(tensors, path):
        real_save_file(tensors, path)
        builders.append(path)
        if len(builders) == 1:  # the concurrent builder runs to the end before the first one renames
            cached(teacher, teacher_dir, split, tmp_path / "cache")

    monkeypatch.setattr(teacher_logits, "save_file", save_then_let_another_builder_run)
    logits = cached(teacher, teacher_dir, split, tmp_path / "cache")
    assert len(builders) == 2 and builders[0] != builders[1], "each builder writes its own temporary file"
    torch.testing.assert_close(logits, cached(teacher, teacher_dir, split, tmp_path / "cache"), rtol=0, atol=0)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        f"teacher-logits-{cache_key(teacher_dir, split)}.safetensors"]


def test_the_key_changes_with_the_code_that_computes_the_logits(teacher_dir, monkeypatch):
    import distill.teacher_logits as teacher_logits
    split = EncodedSplit([[2, 5, 6, 3], [2, 7, 3]], [0, 1])
    key, original = cache_key(teacher_dir, split), teacher_logits.SCORING_CODE

    def predict_logits_edited(*args, **kwargs):  # any other source text than the loop's own
        raise AssertionError("never called")

    monkeypatch.setattr(teacher_logits, "SCORING_CODE", (predict_logits_edited, *teacher_logits.SCORING_CODE[1:]))
    assert cache_key(teacher_dir, split) != key, "an edit to the scoring code must miss the old cache"
    monkeypatch.setattr(teacher_logits, "SCORING_CODE", original)
    assert cache_key(teacher_dir, split) == key
    monkeypatch.setattr(teacher_logits.transformers, "__version__", "0.0.0")
    assert cache_key(teacher_dir, split) != key, "so must another version of transformers"
