"""baselines/alt_profanity_check.py without the side environment: a stub stands in for the package.

The stub "python" is a script run by this interpreter: it puts a fake ``profanity_check`` module first on the
path and runs the module's real inline program, so the JSON round trip is the one the side environment makes.
"""
import json
import sys

import pytest

from baselines import alt_profanity_check
from data.splits import Split, Splits

# Probabilities by hand: the fake predict_prob reads each text's first word as its probability.
KNOWN = [("0.9 you idiot", 1), ('0.8 what a "great" point', 0), ("0.3 tu es un imbécile\nvraiment", 1),
         ("0.6 thanks 🙂", 0), ("0.1 fair enough", 0)]
PERFECT = [("0.9 moron", 1), ("0.7 loser", 1), ("0.4 nice work", 0), ("0.2 kind words", 0)]
READ_FIRST_WORD = """
import json, pathlib
import numpy as np

def predict_prob(texts):
    pathlib.Path(__file__).with_name("received.json").write_text(json.dumps(texts))
    return np.array([float(text.split()[0]) for text in texts])
"""


def stub_python(folder, fake_module: str):
    """An executable standing in for .venv-peer/bin/python, with ``fake_module`` as its profanity_check."""
    (folder / "profanity_check.py").write_text(fake_module, encoding="utf-8")
    stub = folder / "python"
    stub.write_text(f"#!{sys.executable}\nimport sys\n"
                    f"assert sys.argv[1:3] == ['-I', '-c'], sys.argv\n"
                    f"sys.path.insert(0, {str(folder)!r})\nexec(sys.argv[3])\n", encoding="utf-8")
    stub.chmod(0o755)
    return stub


@pytest.fixture
def loads(monkeypatch):
    """Replace the insults data by a small test split; return the list of load_splits calls."""
    calls, rows = [], []

    def load_splits(*args, **kwargs):
        calls.append((args, kwargs))
        return Splits(Split([], []), Split([], []), Split([t for t, _ in rows], [y for _, y in rows]), "stub")
    monkeypatch.setattr(alt_profanity_check, "load_splits", load_splits)
    return calls, rows


def run(tmp_path, stub):
    out = tmp_path / "results" / "peer.json"
    alt_profanity_check.main(["--python", str(stub), "--out", str(out)])
    return out


def test_known_probabilities_are_scored_by_hand(tmp_path, loads, capsys):
    calls, rows = loads
    rows += KNOWN
    stub = stub_python(tmp_path, READ_FIRST_WORD)
    out = run(tmp_path, stub)
    assert calls == [(("insults",), {})]  # the default split of the default dataset
    assert json.loads((tmp_path / "received.json").read_text()) == [text for text, _ in KNOWN]
    result = json.loads(out.read_text())
    # Toxic 0.9 and 0.3 against clean 0.8, 0.6, 0.1: 0.9 outranks all three, 0.3 only 0.1, so 4 of 6 pairs.
    assert result["roc_auc"] == pytest.approx(4 / 6)
    at_half = result["at_0.5"]
    assert at_half["confusion"] == {"tp": 1, "fp": 2, "fn": 1, "tn": 1}  # 0.9, 0.8 and 0.6 are called toxic
    assert (at_half["precision"], at_half["recall"], at_half["f1"]) == pytest.approx((1 / 3, 1 / 2, 0.4))
    assert {key: result[key] for key in ("package", "dataset", "split", "examples")} == {
        "package": "alt-profanity-check==1.9.1", "dataset": "insults", "split": "test", "examples": 5}
    assert result["generated_by"] == f"python -m baselines.alt_profanity_check --python {stub} --out {out}"
    assert "training score" in result["not_on_toxic_comments"]
    assert "ROC-AUC 0.6667" in capsys.readouterr().out


def test_a_perfect_ranking_scores_one(tmp_path, loads):
    loads[1].extend(PERFECT)
    result = json.loads(run(tmp_path, stub_python(tmp_path, READ_FIRST_WORD)).read_text())
    assert result["roc_auc"] == 1.0 and result["at_0.5"]["f1"] == 1.0


@pytest.mark.parametrize("fake_module, named", [
    ("print('loading the model...')\n" + READ_FIRST_WORD, "answered no JSON: b'loading the model"),
    (READ_FIRST_WORD.replace("for text in texts", "for text in texts[1:]"), "answered 4 values, not a list of 5"),
    (READ_FIRST_WORD.replace("float(text.split()[0])", "1.5"), "answered 1.5 for text 0"),
    (READ_FIRST_WORD.replace("float(text.split()[0])", "float('nan')"), "answered nan for text 0"),
    (READ_FIRST_WORD.replace("[float(text.split()[0]) for text in texts]", "{'p': 0.5}"), "answered a JSON dict"),
    ("raise ValueError('model.joblib is truncated')", "exited with status 1: ValueError: model.joblib is"),
], ids=["garbage", "wrong-count", "above-one", "nan", "not-a-list", "crash"])
def test_a_bad_answer_is_one_line_and_writes_nothing(tmp_path, loads, fake_module, named):
    loads[1].extend(KNOWN)
    with pytest.raises(SystemExit) as stopped:
        run(tmp_path, stub_python(tmp_path, fake_module))
    message = str(stopped.value.code)
    assert message.startswith("error: ") and named in message and "\n" not in message
    assert not (tmp_path / "results").exists()


def test_a_missing_side_environment_says_to_build_it_before_loading_data(tmp_path, loads):
    with pytest.raises(SystemExit) as stopped:
        run(tmp_path, tmp_path / ".venv-peer" / "bin" / "python")
    message = str(stopped.value.code)
    assert "make peer" in message and "\n" not in message
    assert loads[0] == [] and not (tmp_path / "results").exists()
