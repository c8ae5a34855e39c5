"""evaluate.py: metrics checked by hand, the threshold chosen on validation only, batched inference,
and the whole report (tables, JSON, figures, the README's answer and docs/) generated from tiny run folders."""
import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import evaluate
import report.__main__ as full_report
from conftest import TINY_WORDS, tiny_classifier, tiny_tokenizer
from data.splits import Split, Splits
from evaluate import EvaluationError, quality_report
from report.behaviour_cases import CAPABILITIES
from report.readme import markers, update_marked_section
from report.tables import TRAINING_LOSS, number, performance_cell, signed
from training.metrics import best_f1_threshold, binary_metrics
from webapp.app import Predictor


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """evaluate.main sets torch's thread count for the whole process; give the next tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- metrics and threshold, by hand

LABELS = [1, 1, 1, 0, 0, 0, 0, 0]
PROBS = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4, 0.05]


def test_binary_metrics_match_a_hand_computation():
    metrics = binary_metrics(LABELS, PROBS, 0.5)
    # At 0.5 the predictions are 1 1 0 1 0 0 0 0: TP=2 (0.9, 0.8), FN=1 (0.3), FP=1 (0.6), TN=4.
    assert metrics["confusion"] == {"tn": 4, "fp": 1, "fn": 1, "tp": 2}
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["precision"] == pytest.approx(2 / 3)  # TP / (TP + FP)
    assert metrics["recall"] == pytest.approx(2 / 3)  # TP / (TP + FN)
    assert metrics["f1"] == pytest.approx(2 / 3)
    # Clean class: precision TN/(TN+FN) = 4/5, recall TN/(TN+FP) = 4/5, F1 = 0.8; macro = mean of both F1s.
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    # Of the 3 x 5 (toxic, clean) pairs, the toxic one scores higher in 5 + 5 + 3 (0.3 beats 0.2, 0.1, 0.05).
    assert metrics["roc_auc"] == pytest.approx(13 / 15)
    # Average precision: the toxic comments come at ranks 1, 2, 5 with precision 1, 1, 3/5 there.
    assert metrics["pr_auc"] == pytest.approx((1 + 1 + 3 / 5) / 3)


def test_best_f1_threshold_matches_a_hand_computation():
    # Thresholds 0.9 / 0.8 / 0.6 / 0.4 / 0.3 give F1 1/2, 4/5, 2/3, 4/7, 3/4: 0.8 wins.
    assert best_f1_threshold(LABELS, PROBS) == 0.8
    assert binary_metrics(LABELS, PROBS, 0.8)["f1"] == pytest.approx(0.8)


def test_the_threshold_depends_on_validation_only():
    rng = np.random.default_rng(0)
    validation_labels, test_labels = rng.integers(0, 2, 60), rng.integers(0, 2, 80)
    validation_probs = np.clip(0.3 + 0.4 * validation_labels + rng.normal(0, 0.2, 60), 0, 1)
    test_probs = np.clip(0.3 + 0.4 * test_labels + rng.normal(0, 0.2, 80), 0, 1)

    original = quality_report(validation_labels, validation_probs, test_labels, test_probs)
    permuted = quality_report(validation_labels, validation_probs, rng.permutation(test_labels), test_probs)

    assert original["validation_threshold"] == best_f1_threshold(validation_labels, validation_probs)
    assert permuted["validation_threshold"] == original["validation_threshold"]
    assert permuted["validation"] == original["validation"]
    assert permuted["test"] != original["test"]  # the test labels did reach the test metrics


def test_batched_inference_keeps_the_order_and_matches_one_comment_at_a_time():
    model, tokenizer = tiny_classifier(layers=2), tiny_tokenizer()
    texts = ["you idiot", "thanks for the reply great point", "what a dumb thing to say you moron loser",
             "nice", "i love this article and agree with your comment", "stupid"]
    batched = Predictor("tiny", model, tokenizer, max_length=32).probabilities(texts, batch_size=4)
    with torch.inference_mode():
        one_by_one = [torch.softmax(model(**tokenizer(text, return_tensors="pt")).logits, -1)[0, 1].item()
                      for text in texts]
    assert batched == pytest.approx(one_by_one, abs=1e-5)


# ---------------------------------------------------------------- the whole report on tiny runs

TOXIC_WORDS = ["idiot", "stupid", "moron", "loser", "dumb", "hate"]
CLEAN_WORDS = [w for w in TINY_WORDS if w not in TOXIC_WORDS]


def tiny_split(size: int, seed: int) -> Split:
    """Comments of 2-12 words; the toxic ones (every third) contain an insult."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(size):
        words = list(rng.choice(CLEAN_WORDS, rng.integers(2, 12)))
        if i % 3 == 0:
            words.insert(int(rng.integers(len(words))), str(rng.choice(TOXIC_WORDS)))
        texts.append(" ".join(words))
        labels.append(int(i % 3 == 0))
    return Split(texts, labels)


def epoch_means(steps: list[dict]) -> dict:
    """Each loss term's mean over an epoch's steps, as the training loop records it (``train_terms``)."""
    names = [name for name in steps[0] if name not in ("step", "epoch", "lr")]
    return {name: sum(step[name] for step in steps) / len(steps) for name in names}


def write_run(folder, method: str, seed: int, model_seed: int, dataset: str = "tiny") -> None:
    """A run folder as train.py writes it: the HF model and tokenizer, history.json, a LoRA adapter."""
    model = tiny_classifier(layers=2, seed=model_seed)
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    total = sum(p.numel() for p in model.parameters())
    trainable = total // 10 if method.startswith("lora") else total
    if method.startswith("lora"):
        save_file({"lora_A": torch.zeros(4, 32), "lora_B": torch.zeros(32, 4)}, str(folder / "adapter.safetensors"))
    distilled = {"kd": 0.2, "cos": 0.1} if method in ("odd", "even") else {}
    steps = [{"step": s, "epoch": s // 5, "loss": 0.7 - 0.02 * s, "lr": 1e-4, "ce": 0.5 - 0.01 * s, **distilled}
             for s in range(10)]
    history = {
        "method": method,
        "args": {"dataset": dataset, "text_column": None, "label_column": None, "toxic_labels": None,
                 "val_fraction": 0.1, "seed": seed, "split_seed": 42, "max_length": 32, "model": "tiny", "epochs": 2,
                 "lr": 5e-5, "alpha_ce": 0.5, "alpha_kd": 0.5, "alpha_cos": 0.1},
        "data": {}, "params": {"total": total, "trainable": trainable, "trainable_share": trainable / total},
        "steps": steps,
        "epochs": [{"epoch": e, "train_loss": 0.65 - 0.1 * e - 0.01 * model_seed, "validation": {}, "wall_time_s": 1.0,
                    "train_terms": epoch_means([step for step in steps if step["epoch"] == e])} for e in range(2)],
        "best_epoch": 1, "validation_threshold": 0.5, "wall_time_s": 90.0 + model_seed,
        "total_time_s": 120.0 + 6 * model_seed, "examples_per_s": 10.0,
        "device": "cpu",
    }
    (folder / "history.json").write_text(json.dumps(history))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with runs/ (main runs, a two-seed study, a hidden checkpoint), a README and docs/."""
    runs = tmp_path / "runs"
    for i, (name, method, seed) in enumerate([("teacher", "teacher", 42), ("odd", "odd", 42), ("even", "even", 42),
                                              ("lora", "lora", 42), ("study/odd-seed1", "odd", 1),
                                              ("study/even-seed1", "even", 1), (".checkpoints/odd", "odd", 42)]):
        (runs / name).mkdir(parents=True)
        write_run(runs / name, method, seed, model_seed=i)
    write_documents(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


DOCS_SECTIONS = {"study.md": "study", "ablations.md": "ablations", "behaviour.md": "behaviour", "serving.md": "serving"}


def marked(name: str, body: str) -> str:
    start, end = markers(name)
    return f"{start}\n{body}\n{end}\n"


def write_documents(root) -> None:
    """A README and docs/ with hand-written prose around each generated section's markers."""
    (root / "README.md").write_text(f"# Project\n\nIntro.\n\n{marked('answer', 'old answer')}\n"
                                    f"{marked('reading-path', 'old path')}\nOutro.\n")
    (root / "docs").mkdir()
    for filename, name in DOCS_SECTIONS.items():
        (root / "docs" / filename).write_text(f"# {name}\n\nProse.\n\n{marked(name, 'old numbers')}\nMore prose.\n")


def section(path, name: str) -> str:
    """The generated text between the markers of ``name`` in the file at ``path``."""
    text = path.read_text()
    start, end = markers(name)
    return text[text.index(start) + len(start):text.index(end)]


@pytest.fixture
def load_calls(monkeypatch) -> list[dict]:
    """Replace the dataset loader by tiny fixed splits (like the embedded data: the test split never
    depends on the seed) and record every call."""
    calls = []

    def fake_load_splits(name, **kwargs) -> Splits:
        calls.append({"name": name, **kwargs})
        return Splits(tiny_split(40, 0), tiny_split(30, 1), tiny_split(45, 2), source=f"fake {name}")

    monkeypatch.setattr(evaluate, "load_splits", fake_load_splits)
    return calls


def test_evaluate_writes_the_report_the_readme_and_docs_from_the_same_numbers(project, load_calls, capsys):
    results = full_report.main(["--no-speed", "--threads", "1"])

    # Which runs: all non-hidden run folders one or two levels down; one split load per dataset settings.
    assert [r["name"] for r in results["runs"]] == ["teacher", "odd", "even", "lora", "odd-seed1", "even-seed1"]
    assert [r["path"] for r in results["runs"]][:2] == ["runs/teacher", "runs/odd"]
    assert [call["seed"] for call in load_calls] == [42], "runs that differ only in training seed share splits"

    on_disk = json.loads((project / "results" / "results.json").read_text())
    assert on_disk["runs"][0].keys() >= {"name", "method", "path", "seed", "validation", "test",
                                         "validation_threshold", "params", "size_mb", "adapter_size_mb",
                                         "speed", "train_wall_time_s", "train_ce", "train_objective", "flags"}
    assert on_disk["generated_by"] == "python -m report --no-speed --threads 1"
    lora, odd = on_disk["runs"][3], on_disk["runs"][1]
    assert lora["adapter_size_mb"] == pytest.approx((project / "runs/lora/adapter.safetensors").stat().st_size / 1e6)
    assert odd["adapter_size_mb"] is None
    assert odd["size_mb"] == pytest.approx(sum(f.stat().st_size for f in (project / "runs/odd").iterdir()
                                               if f.name != "README.md") / 1e6), "the model card is not counted"
    assert odd["params"]["total"] == sum(p.numel() for p in tiny_classifier(layers=2).parameters())
    assert odd["train_objective"] == pytest.approx(0.65 - 0.1 - 0.01)  # the last epoch's mean loss
    assert odd["train_ce"] == pytest.approx(0.5 - 0.07)  # the cross-entropy term, from the last epoch's steps
    assert odd["objective"] == "0.5·CE + 0.5·KD + 0.1·cos" and on_disk["runs"][0]["objective"] == "CE"
    assert on_disk["seeds"]["odd"]["seeds"] == [1, 42] and on_disk["seeds"]["teacher"]["roc_auc"]["std"] is None
    assert on_disk["comparisons"]["odd_vs_even"]["seeds"] == [1, 42]
    assert on_disk["comparisons"]["lora_vs_odd"]["seeds"] == [42]
    assert "skipped" in on_disk["comparisons"]["lora-kd_vs_lora"]

    for figure in on_disk["figures"].values():
        assert (project / "results" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The README's answer: each method's seed mean, and its difference with lora as results.json has it
    # (stored as lora − odd, shown as odd − lora); the prose around the markers is kept.
    readme = (project / "README.md").read_text()
    assert readme.startswith("# Project\n\nIntro.\n\n") and readme.endswith("Outro.\n")
    answer = section(project / "README.md", "answer")
    assert "old answer" not in answer and "old path" not in readme
    odd_row = next(line for line in answer.splitlines() if line.startswith("| `odd` |"))
    lora_vs_odd = on_disk["comparisons"]["lora_vs_odd"]
    assert f"| {number(on_disk['seeds']['odd']['roc_auc']['mean'])} ± " in odd_row
    assert f"| {signed(-lora_vs_odd['difference'])} | [{signed(-lora_vs_odd['ci95'][1])}, " in odd_row
    assert "| `lora` |" in answer and "| reference |" in answer
    assert "| [`train.py`](train.py) |" in section(project / "README.md", "reading-path")

    # docs/study.md: the model comparison, findings, seeds and comparisons, with figures linked from docs/.
    study = section(project / "docs" / "study.md", "study")
    assert (project / "docs" / "study.md").read_text().endswith("More prose.\n")
    assert "old numbers" not in study and f"| Model Type | {TRAINING_LOSS} | Test Set Performance |" in study
    for run in on_disk["runs"][:4]:
        assert f"| {number(run['train_ce'], 4)} | {performance_cell(run)} |" in study
    comparison = on_disk["comparisons"]["odd_vs_even"]
    assert f"odd − even, test ROC-AUC: {signed(comparison['difference'])} (95% CI [{signed(comparison['ci95'][0])}" in study
    assert "![ROC curves on the test split](../results/roc_test.png)" in study
    primary_minutes = [run["command_wall_time_s"] / 60 for run in on_disk["runs"] if run["primary"]]
    assert f"teacher {primary_minutes[0]:.1f}, odd {primary_minutes[1]:.1f}" in study
    assert f"{sum(primary_minutes):.1f} in all" in study
    flagged = [run["name"] for run in on_disk["runs"] if run["flags"]]
    assert all(f"⚠ **{name}**" in study for name in flagged)
    assert (project / "results" / "results.md").read_text().count("| Model Type |") == 1
    assert "The web app serves `" in section(project / "docs" / "serving.md", "serving")

    # The behavioural suite ran on every run: its table in docs/behaviour.md, failures in results/behaviour.md.
    assert all(list(run["behaviour"]["pass_rates"]) == list(CAPABILITIES) for run in on_disk["runs"])
    behaviour = section(project / "docs" / "behaviour.md", "behaviour")
    assert f"| `odd` | {on_disk['runs'][1]['validation_threshold']:.3f} |" in behaviour
    assert "(../results/behaviour.md)" in behaviour
    assert "![Behavioural tests: pass rate per capability](../results/behaviour_heatmap.png)" in study
    assert (project / "results" / "behaviour.md").read_text().startswith("# Behavioural tests")
    printed = capsys.readouterr().out
    assert f"| Model Type | {TRAINING_LOSS} | Test Set Performance |" in printed
    assert "updated the answer section of README.md" in printed and "updated the study section of docs" in printed


def test_moving_test_labels_never_moves_the_validation_threshold(project, monkeypatch):
    def load(permute_test: bool):
        def fake_load_splits(name, **kwargs) -> Splits:
            test = tiny_split(45, 2)
            if permute_test:
                test = Split(test.texts, list(np.random.default_rng(0).permutation(test.labels)))
            return Splits(tiny_split(40, 0), tiny_split(30, 1), test, source="fake")
        monkeypatch.setattr(evaluate, "load_splits", fake_load_splits)
        return full_report.main(["runs/odd", "runs/even", "--no-speed", "--no-readme", "--threads", "1"])["runs"]

    original, permuted = load(False), load(True)
    for before, after in zip(original, permuted):
        assert after["validation_threshold"] == before["validation_threshold"]
        assert after["validation"] == before["validation"]
        assert after["test"] != before["test"]


def test_evaluate_reads_a_local_csv_through_load_splits(tmp_path, monkeypatch):
    split = tiny_split(80, 3)
    csv = tmp_path / "comments.csv"
    csv.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(split.texts, split.labels)))
    write_run(tmp_path / "odd", "odd", 42, model_seed=0, dataset=str(csv))
    monkeypatch.chdir(tmp_path)

    # One thread: on a busy shared machine, two threads spin-waiting for each other slow a tiny model 10x.
    run = full_report.main(["odd", "--no-readme", "--threads", "1"])["runs"][0]

    assert run["test_set"]["size"] == 8  # data.splits carves 10% of the CSV as test
    assert run["speed"]["threads"] == 1 and run["speed"]["batch_1"]["comments"] == 8 and run["speed"]["batch_64"]["examples_per_s"] > 0
    assert run["speed"]["batch_1"]["ms_per_comment"] == pytest.approx(1000 / run["speed"]["batch_1"]["examples_per_s"])
    assert (tmp_path / "results" / "results.md").is_file()


def test_a_file_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n\nNo markers here.\n")
    assert "no <!-- answer:start -->" in update_marked_section(readme, "answer", "| new | table |")
    assert readme.read_text() == "# Project\n\nNo markers here.\n"
    assert "does not exist" in update_marked_section(tmp_path / "missing.md", "answer", "x")


def test_a_marked_section_update_is_idempotent_and_touches_no_other_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{marked('answer', '')}{marked('reading-path', 'path')}b\n")
    update_marked_section(readme, "answer", "numbers 1")
    once = readme.read_text()
    update_marked_section(readme, "answer", "numbers 1")
    assert readme.read_text() == once == f"a\n{marked('answer', 'numbers 1')}{marked('reading-path', 'path')}b\n"
    assert not re.search(r"\.partial", " ".join(p.name for p in tmp_path.iterdir()))


def test_each_run_is_scored_with_its_own_model(tmp_path, monkeypatch):
    """Two runs whose models rank the test comments in opposite orders get the AUCs of their own folders."""
    from sklearn.metrics import roc_auc_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    splits = Splits(tiny_split(40, 0), tiny_split(30, 1), tiny_split(45, 2), source="fake")
    monkeypatch.setattr(evaluate, "load_splits", lambda name, **kwargs: splits)
    write_run(tmp_path / "odd", "odd", 42, model_seed=2)  # a seed whose random model ranks better than chance
    write_run(tmp_path / "even", "even", 42, model_seed=2)
    flipped = tiny_classifier(layers=2, seed=2)
    with torch.no_grad():  # the same model with its head negated: every ranking reversed, AUC -> 1 - AUC
        flipped.classifier.weight.neg_()
        flipped.classifier.bias.neg_()
    flipped.save_pretrained(tmp_path / "even")
    monkeypatch.chdir(tmp_path)

    runs = full_report.main(["odd", "even", "--no-speed", "--no-readme", "--threads", "1"])["runs"]

    def own_auc(folder):
        model = AutoModelForSequenceClassification.from_pretrained(tmp_path / folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(tmp_path / folder)
        with torch.inference_mode():
            probs = [torch.softmax(model(**tokenizer(text, return_tensors="pt")).logits, -1)[0, 1].item()
                     for text in splits.test.texts]
        return roc_auc_score(splits.test.labels, probs)

    odd_auc, even_auc = own_auc("odd"), own_auc("even")
    assert abs(odd_auc - even_auc) > 0.1, "the two tiny models must rank the test set clearly differently"
    assert [r["name"] for r in runs] == ["odd", "even"]
    assert runs[0]["test"]["at_0.5"]["roc_auc"] == pytest.approx(odd_auc, abs=1e-6)
    assert runs[1]["test"]["at_0.5"]["roc_auc"] == pytest.approx(even_auc, abs=1e-6)


def test_a_run_without_weights_is_skipped_and_the_others_are_reported(project, load_calls, capsys):
    (project / "runs" / "even" / "model.safetensors").unlink()
    (project / "runs" / "study" / "odd-seed1" / "history.json").write_text("{not json")
    (project / "runs" / "odd.failed").mkdir()  # a run train.py refused: not even looked at
    (project / "runs" / "odd.failed" / "history.json").write_text("{}")
    arguments = ["--no-speed", "--no-readme", "--threads", "1"]

    results = full_report.main(arguments)

    assert [run["name"] for run in results["runs"]] == ["teacher", "odd", "even-seed1", "lora"]
    assert next(run for run in results["runs"] if run["name"] == "even-seed1")["primary"], \
        "with runs/even skipped, the study's even run represents the method"
    skipped = {skip["path"]: skip["reason"] for skip in results["skipped"]}
    assert set(skipped) == {"runs/even", "runs/study/odd-seed1"}
    assert "could not load the classifier" in skipped["runs/even"] and "is unreadable (JSONDecodeError" in skipped["runs/study/odd-seed1"]
    assert "evaluate.py: skipped runs/even:" in capsys.readouterr().err
    assert "2 run(s) skipped, not in any table" in (project / "results" / "results.md").read_text()

    with pytest.raises(EvaluationError, match=r"--strict: 2 run\(s\) skipped"):
        full_report.main([*arguments, "--strict"])
    for name in ("teacher", "odd", "lora", "study/even-seed1"):
        (project / "runs" / name / "model.safetensors").unlink()
    with pytest.raises(EvaluationError, match=r"no run could be scored \(6 skipped"):
        full_report.main(arguments)


def test_an_unchanged_run_is_not_scored_twice_and_a_retrained_one_is(project, load_calls, monkeypatch):
    scored = []
    real_probabilities = Predictor.probabilities

    def counting_probabilities(predictor, texts, *args, **kwargs):
        scored.append((predictor.name, len(texts)))
        return real_probabilities(predictor, texts, *args, **kwargs)

    monkeypatch.setattr(Predictor, "probabilities", counting_probabilities)
    first = full_report.main(["--no-speed", "--threads", "1", "--no-readme"])
    assert (project / "runs" / ".scores" / "odd.json").is_file()
    scored.clear()
    history = json.loads((project / "runs" / "odd" / "history.json").read_text())
    (project / "runs" / "odd" / "history.json").write_text(json.dumps({**history, "total_time_s": 1.0}))
    second = full_report.main(["--no-speed", "--threads", "1", "--no-readme"])
    validation_and_test = (30, 45)  # the sizes of the fake splits; the behavioural suite's calls aside
    assert {name for name, size in scored if size in validation_and_test} == {"odd"}  # the changed run only
    assert [r["test"] for r in first["runs"]] == [r["test"] for r in second["runs"]]


def test_evaluate_alone_scores_the_runs_and_prints_the_answer_with_its_intervals(project, load_calls, capsys):
    """python evaluate.py: the scores, the seed summary and the paired comparisons, without the report around them."""
    evaluation = evaluate.main(["--threads", "1"])
    assert [r["name"] for r in evaluation["runs"]] == ["teacher", "odd", "even", "lora", "odd-seed1", "even-seed1"]
    assert json.loads((project / "results" / "evaluation.json").read_text())["seeds"]["odd"]["seeds"] == [1, 42]
    assert not (project / "results" / "results.json").exists(), "the full report is python -m report's"
    odd_even = evaluation["comparisons"]["odd_vs_even"]
    assert odd_even["seeds"] == [1, 42] and odd_even["family"] == "primary" and odd_even["degrees_of_freedom"] == 1
    assert evaluation["comparisons"]["lora_vs_tfidf"] == {"a": "lora", "b": "tfidf", "question": ANY_TEXT,
                                                          "skipped": "no tfidf run was evaluated"}
    printed = capsys.readouterr().out
    low, high = odd_even["ci95"]
    line = next(line for line in printed.splitlines() if line.startswith("| odd − even |"))
    assert f"[{low:+.3f}, {high:+.3f}]" in line
    assert (f"no difference detected; the interval allows ±{max(-low, high):.3f}" in line) == (low <= 0 <= high)
    summary = evaluation["seeds"]["odd"]["roc_auc"]
    assert f"| odd | 2 | {summary['mean']:.3f} ± {summary['std']:.3f} |" in printed


class AnyText(str):
    def __eq__(self, other):
        return isinstance(other, str)

    __hash__ = str.__hash__


ANY_TEXT = AnyText()
