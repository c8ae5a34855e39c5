"""Explanations in the web app: highlighted words on the page, ``"explain": true`` in the API, the word cap.

Real HTTP on loopback with the tiny random models of test_webapp.py, the core app given serving/'s
``explain`` hook; the numbers must be those of ``word_contributions`` (serving/explain.py), which
tests/test_explain.py checks against the model.
"""
import html
import re

import pytest

from serving.explain import MAX_EXPLAIN_WORDS, explain, shade, word_contributions
from serving.runs import load_predictors
from test_webapp import form_body, post_form, post_json, save_tiny_model, serve
from webapp.app import make_app

TEXT = "thank you for the reply,  you <b>idiot</b>"


@pytest.fixture(scope="module")
def predictors(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    save_tiny_model(runs / "even", threshold=0.42, seed=0)
    save_tiny_model(runs / "odd", threshold=0.6, seed=1)
    return load_predictors(runs / "even", runs_dir=runs, precision="fp32")[0]


@pytest.fixture(scope="module")
def address(predictors):
    with serve(make_app(predictors, "even", explain=explain)) as address:
        yield address


def highlighted_words(fragment: str) -> list[tuple[str, str, float]]:
    """(word, CSS class, contribution) of every highlighted word in an HTML fragment."""
    return [(html.unescape(word), css, float(value)) for css, value, word in re.findall(
        r'<span class="word ([\w-]+)" data-contribution="([-+.\d]+)"[^>]*>([^<]*)</span>', fragment)]


def explanation_block(page: str, model: str) -> str:
    """The inside of the <p class="explanation"> of ``model``."""
    opening = '<p class="explanation">'
    start = page.index(opening, page.index(f'class="explained" data-model="{model}"')) + len(opening)
    return page[start:page.index("</p>", start)]


def test_api_explain_adds_each_words_contribution_for_the_model_asked(address, predictors):
    status, reply = post_json(address, {"texts": [TEXT, "you idiot"], "explain": True, "model": "odd"})
    assert status == 200
    for result, text in zip(reply["results"], [TEXT, "you idiot"]):
        expected = word_contributions(predictors["odd"], text)
        assert [item["word"] for item in result["explanation"]] == text.split()
        assert [item["contribution"] for item in result["explanation"]] == pytest.approx(expected.contributions, abs=1e-5)
        assert set(result) == {"label", "toxic_probability", "explanation"}
        assert expected.probability == pytest.approx(result["toxic_probability"], abs=2e-3), \
            "the probability explained is the one shown, at the predictor's precision"
    status, reply = post_json(address, {"text": TEXT})
    assert status == 200 and "explanation" not in reply["results"][0], "only when asked"


def test_api_explains_up_to_the_word_cap_and_not_one_word_more(address):
    words = ["thank"] * MAX_EXPLAIN_WORDS
    assert post_json(address, {"text": " ".join(words), "explain": True})[0] == 200
    assert post_json(address, {"text": " ".join(words + ["you"]), "explain": False})[0] == 200, \
        "the cap bounds explanations only"


@pytest.mark.parametrize("payload, message", [
    ({"text": "you idiot", "explain": "yes"}, '"explain" must be true or false'),
    ({"text": "you idiot", "explain": 1}, '"explain" must be true or false'),
    ({"text": "you idiot", "explain": None}, '"explain" must be true or false'),
    ({"text": "idiot " * (MAX_EXPLAIN_WORDS + 1), "explain": True}, f"this one holds {MAX_EXPLAIN_WORDS + 1}"),
    ({"texts": ["you idiot " * 30] * 2, "explain": True}, "up to 100 words a request, as each word costs a forward "
                                                          "pass; this one holds 120."),
], ids=["string", "number", "null", "over-the-cap", "batch-over-the-cap"])
def test_bad_explain_requests_get_a_clear_400_and_the_server_goes_on(address, payload, message):
    status, reply = post_json(address, payload)
    assert status == 400 and message in reply["error"]
    assert post_json(address, {"text": "thank you", "explain": True})[0] == 200


def test_the_page_highlights_every_word_of_the_served_model(address, predictors):
    status, page = post_form(address, form_body(text=TEXT, mode="single"))
    assert status == 200
    block = explanation_block(page, "even")
    expected = word_contributions(predictors["even"], TEXT)
    words = highlighted_words(block)
    assert [word for word, _, _ in words] == TEXT.split(), "typed HTML stays text, escaped"
    assert [value for _, _, value in words] == pytest.approx(expected.contributions, abs=1e-3)
    assert [css for _, css, _ in words] == [shade(c) for c in expected.contributions]
    assert html.unescape(re.sub(r"<[^>]+>", "", block)) == TEXT, "spaces kept as typed"
    assert "<b>" not in page and "style=" not in page, "no markup from the user, no inline style (CSP)"


def test_the_compare_view_explains_the_served_model_only(address, predictors):
    """One explanation a post, not one per model: the others are explained on request, by the API."""
    status, page = post_form(address, form_body(text="you stupid idiot", mode="compare"))
    assert status == 200 and 'data-model="odd" data-label=' in page and 'data-model="even" data-label=' in page
    expected = word_contributions(predictors["even"], "you stupid idiot").contributions
    got = [value for _, _, value in highlighted_words(explanation_block(page, "even"))]
    assert got == pytest.approx(expected, abs=1e-3)
    assert page.count('class="explained"') == 1


def test_explanations_run_once_a_request_for_one_model(predictors, monkeypatch):
    """Counts the explained (predictor, texts) of each post: the served model's on the page, the API's model."""
    calls = []
    counting = lambda predictor, texts: calls.append((predictor.name, len(texts))) or explain(predictor, texts)
    with serve(make_app(predictors, "even", explain=counting)) as address:
        assert post_form(address, form_body(text="you idiot", mode="compare"))[0] == 200
        assert post_form(address, form_body(text="you idiot", mode="single"))[0] == 200
        assert post_json(address, {"texts": ["you idiot", "thanks"], "model": "odd"})[0] == 200
        assert post_json(address, {"texts": ["you idiot", "thanks"], "model": "odd", "explain": True})[0] == 200
    assert calls == [("even", 1), ("even", 1), ("odd", 2)]


def test_a_comment_over_the_cap_gets_its_verdict_and_a_note_instead(address):
    status, page = post_form(address, form_body(text="thank you " * MAX_EXPLAIN_WORDS, mode="compare"))
    assert status == 200 and 'data-model="odd" data-label=' in page
    assert 'class="explained"' not in page
    assert f"up to {MAX_EXPLAIN_WORDS} words a request, as each word costs a forward pass; this one holds " \
           f"{2 * MAX_EXPLAIN_WORDS}" in page


def test_without_the_hook_the_core_app_explains_nothing(predictors):
    with serve(make_app(predictors, "even")) as address:
        status, page = post_form(address, form_body(text="you idiot", mode="single"))
        assert status == 200 and 'id="verdict"' in page and 'class="explained"' not in page
        status, reply = post_json(address, {"text": "you idiot", "explain": True})
        assert status == 200 and set(reply["results"][0]) == {"label", "toxic_probability"}


def test_shades_step_up_with_the_size_of_the_contribution():
    assert [shade(c) for c in (0.0, 0.019, 0.02, -0.1, 0.3, -0.6)] == [
        "push-none", "push-none", "push-toxic-1", "push-clean-2", "push-toxic-3", "push-clean-4"]
