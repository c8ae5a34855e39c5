import pytest

from data.splits import TEST_FRACTION, Split, carve_splits, stratified_split

LABELS = [0] * 70 + [1] * 30


def test_stratified_split_holds_out_each_class_in_proportion():
    kept, held_out = stratified_split(LABELS, 0.1, seed=0)
    assert sorted(kept + held_out) == list(range(len(LABELS)))
    assert [LABELS[i] for i in held_out].count(0) == 7
    assert [LABELS[i] for i in held_out].count(1) == 3
    assert kept == sorted(kept) and held_out == sorted(held_out)


def test_stratified_split_is_deterministic_for_a_seed_and_changes_with_it():
    assert stratified_split(LABELS, 0.2, seed=42) == stratified_split(LABELS, 0.2, seed=42)
    assert stratified_split(LABELS, 0.2, seed=42) != stratified_split(LABELS, 0.2, seed=43)


def test_small_classes_appear_on_both_sides_when_they_can():
    labels = [0] * 20 + [1] * 2
    kept, held_out = stratified_split(labels, 0.1, seed=0)
    assert [labels[i] for i in held_out].count(1) == 1
    assert [labels[i] for i in kept].count(1) == 1


def test_carve_splits_takes_test_first_then_validation_from_the_rest():
    train = Split([f"text {i}" for i in range(len(LABELS))], list(LABELS))
    splits = carve_splits(train, None, None, val_fraction=0.25, seed=1, source="toy")
    assert len(splits.test) == round(TEST_FRACTION * 70) + round(TEST_FRACTION * 30)
    assert len(splits.validation) == round(0.25 * 63) + round(0.25 * 27)
    assert len(splits.train) + len(splits.validation) + len(splits.test) == len(LABELS)
    assert not set(splits.train.texts) & (set(splits.validation.texts) | set(splits.test.texts))
    assert splits.train.positive_rate == pytest.approx(0.3, abs=0.02)
    assert splits.test.positive_rate == pytest.approx(0.3)


def test_carve_splits_keeps_the_sources_own_test_split():
    train = Split(["a", "b", "c", "d"] * 5, [0, 1] * 10)
    test = Split(["only in test"], [1])
    splits = carve_splits(train, None, test, val_fraction=0.1, seed=0, source="toy")
    assert splits.test is test
    assert len(splits.train) + len(splits.validation) == 20


def test_positive_rate():
    assert Split(["a", "b", "c", "d"], [1, 0, 0, 1]).positive_rate == 0.5
    assert Split([], []).positive_rate == 0.0


@pytest.mark.parametrize("val_fraction", [0.1, 0.25, 0.5])
def test_validation_and_test_never_share_an_example(val_fraction):
    """Test is read once at the end: an example that also chose the epoch or threshold would flatter it."""
    labels = [int(i % 4 == 0) for i in range(200)]
    train = Split([f"text {i}" for i in range(200)], labels)
    for seed in range(5):
        splits = carve_splits(train, None, None, val_fraction=val_fraction, seed=seed, source="toy")
        validation, test = set(splits.validation.texts), set(splits.test.texts)
        assert validation and test and not validation & test
        assert len(validation | test | set(splits.train.texts)) == 200, "every example lands in one split"


def test_load_splits_keeps_validation_and_test_apart_on_a_csv(tmp_path):
    from data.load import load_splits
    rows = "".join(f"comment {i},{int(i % 3 == 0)}\n" for i in range(120))
    (tmp_path / "comments.csv").write_text("text,label\n" + rows)
    splits = load_splits(str(tmp_path / "comments.csv"), val_fraction=0.2, seed=3)
    assert not set(splits.validation.texts) & set(splits.test.texts)
    assert not set(splits.train.texts) & (set(splits.validation.texts) | set(splits.test.texts))
