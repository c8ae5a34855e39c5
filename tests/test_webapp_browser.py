"""The form as a person uses it: headless Chromium types a comment, submits it and reads the verdict.

The verdicts must be right, so this test needs a trained model: the teacher that the integration
pipeline fixture trains (tests/conftest.py), or the run folder in DVL_BROWSER_MODEL (e.g. runs/even);
the other runs beside it fill the compare view. Chromium and ChromeDriver come from Debian's packages
(``apt-get install -y chromium chromium-driver``), found on PATH (or named by $CHROMIUM and
$CHROMEDRIVER); Selenium is pointed at those binaries and
SE_OFFLINE is set, so Selenium Manager never tries to download a browser or a driver.
The screenshots go to DVL_SCREENSHOT if set (e.g. webapp/screenshot.png, and the compare view with
the served model's explanation to webapp/screenshot-compare.png), else to a tmp folder.
"""
import os
import shutil
from pathlib import Path

import pytest

from serving.explain import explain
from serving.runs import load_predictors
from test_webapp import NOT_TOXIC, TOXIC, serve
from webapp.app import make_app


def find_binary(variable: str, *names: str) -> Path | None:
    """$variable if set, else the first of ``names`` on PATH (Debian: /usr/bin/chromium, /usr/bin/chromedriver)."""
    found = os.environ.get(variable) or next(filter(None, map(shutil.which, names)), None)
    return Path(found) if found else None


CHROMIUM = find_binary("CHROMIUM", "chromium", "chromium-browser")
CHROMEDRIVER = find_binary("CHROMEDRIVER", "chromedriver")
MODEL = os.environ.get("DVL_BROWSER_MODEL")

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -r requirements-test.txt)")
pytestmark = [
    pytest.mark.assets,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="needs Debian's chromium and chromium-driver on PATH "
                              "(apt-get install -y chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def address(request):
    folder = Path(MODEL or request.getfixturevalue("pipeline") / "runs" / "teacher")
    predictors, served = load_predictors(folder, runs_dir=folder.parent)
    with serve(make_app(predictors, served, explain=explain)) as address:
        yield address


@pytest.fixture
def browser(tmp_path, monkeypatch):
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=900,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


def classify(browser, address, text: str, button: str = "classify"):
    """Type ``text`` into the form and press ``button`` (classify or compare)."""
    from selenium.webdriver.common.by import By

    browser.get("http://%s:%s/" % address)
    box = browser.find_element(By.ID, "text")
    box.send_keys(text)
    browser.find_element(By.ID, button).click()
    return browser.find_element(By.ID, "verdict" if button == "classify" else "comparison")


def save_screenshot(browser, path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial.png")
    assert browser.save_screenshot(str(partial))
    os.replace(partial, path)


def highlighted(container) -> dict[str, tuple[float, str]]:
    """Each highlighted word in ``container``: its contribution and its colour as the browser draws it."""
    from selenium.webdriver.common.by import By

    return {word.text: (float(word.get_attribute("data-contribution")), word.value_of_css_property("background-color"))
            for word in container.find_elements(By.CSS_SELECTOR, ".explanation .word")}


def test_a_person_reads_a_toxic_and_a_not_toxic_verdict(browser, address, tmp_path):
    from selenium.webdriver.common.by import By

    verdict = classify(browser, address, "I hate you, you idiot")
    assert verdict.get_attribute("data-label") == TOXIC
    assert verdict.text == "Toxic"
    assert verdict.value_of_css_property("color") == "rgba(192, 57, 43, 1)", \
        "the stylesheet loads under the Content-Security-Policy"
    assert browser.find_element(By.ID, "submitted-text").text == "I hate you, you idiot"
    words = highlighted(browser.find_element(By.ID, "explanation"))
    assert list(words) == ["I", "hate", "you,", "you", "idiot"]
    strongest = max(words, key=lambda word: words[word][0])
    assert strongest in ("hate", "idiot") and words[strongest][0] > 0.02, words
    assert words[strongest][1] != "rgba(0, 0, 0, 0)", "the word is shaded: the stylesheet's classes apply"
    save_screenshot(browser, Path(os.environ.get("DVL_SCREENSHOT") or tmp_path / "screenshot.png"))

    verdict = classify(browser, address, "Thank you for the thoughtful reply")
    assert verdict.get_attribute("data-label") == NOT_TOXIC
    assert verdict.text == "Not toxic"


def test_the_compare_view_shows_every_verdict_and_why_the_served_model_decided(browser, address, tmp_path):
    from selenium.webdriver.common.by import By

    browser.set_window_size(900, 1300)
    comparison = classify(browser, address, "Thanks for the link, you clown", button="compare")
    rows = comparison.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) >= 2 and all(row.get_attribute("data-label") in (TOXIC, NOT_TOXIC) for row in rows)
    served_name = next(row.get_attribute("data-model") for row in rows if "(served)" in row.text)
    explained = comparison.find_elements(By.CSS_SELECTOR, ".explained")
    assert [block.get_attribute("data-model") for block in explained] == [served_name], "one model explained a post"
    served = highlighted(explained[0])
    assert list(served) == ["Thanks", "for", "the", "link,", "you", "clown"]
    assert served["clown"][0] > 0.02 and served["clown"][1] != "rgba(0, 0, 0, 0)", served
    screenshot = Path(os.environ.get("DVL_SCREENSHOT") or tmp_path / "screenshot.png")
    save_screenshot(browser, screenshot.with_name(f"{screenshot.stem}-compare.png"))
