"""The form as a person uses it: headless Chromium types a comment, submits it and reads the verdict.

The verdicts must be right, so this test needs a trained model: the teacher that the integration
pipeline fixture trains (tests/conftest.py), or the run folder in DVL_BROWSER_MODEL (e.g. runs/even). Chromium and ChromeDriver come from Debian's packages
(``apt-get install -y chromium chromium-driver``), found on PATH (or named by $CHROMIUM and
$CHROMEDRIVER); Selenium is pointed at those binaries and
SE_OFFLINE is set, so Selenium Manager never tries to download a browser or a driver.
The screenshot goes to DVL_SCREENSHOT if set (e.g. webapp/screenshot.png), else to a tmp folder.
"""
import os
import shutil
from pathlib import Path

import pytest

from test_webapp import serve
from webapp.app import make_app
from webapp.predict import NOT_TOXIC, TOXIC, Predictor


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
    folder = MODEL or request.getfixturevalue("pipeline") / "runs" / "teacher"
    predictor = Predictor.from_folder(folder)
    with serve(make_app({predictor.name: predictor}, predictor.name)) as address:
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


def classify(browser, address, text: str):
    """Type ``text`` into the form, press Classify, and return the verdict element."""
    from selenium.webdriver.common.by import By

    browser.get("http://%s:%s/" % address)
    box = browser.find_element(By.ID, "text")
    box.send_keys(text)
    browser.find_element(By.ID, "classify").click()
    return browser.find_element(By.ID, "verdict")


def test_a_person_reads_a_toxic_and_a_not_toxic_verdict(browser, address, tmp_path):
    from selenium.webdriver.common.by import By

    verdict = classify(browser, address, "I hate you, you idiot")
    assert verdict.get_attribute("data-label") == TOXIC
    assert verdict.text == "Toxic"
    assert verdict.value_of_css_property("color") == "rgba(192, 57, 43, 1)", \
        "the stylesheet loads under the Content-Security-Policy"
    assert browser.find_element(By.ID, "submitted-text").text == "I hate you, you idiot"
    screenshot = Path(os.environ.get("DVL_SCREENSHOT") or tmp_path / "screenshot.png")
    partial = screenshot.with_name(f".{screenshot.name}.partial.png")
    assert browser.save_screenshot(str(partial))
    os.replace(partial, screenshot)

    verdict = classify(browser, address, "Thank you for the thoughtful reply")
    assert verdict.get_attribute("data-label") == NOT_TOXIC
    assert verdict.text == "Not toxic"
