"""The CI skip policy of tests/conftest.py: with CI=true a skipped test fails the run unless it is allowed."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import CI_MAY_SKIP, ci_may_skip

SKIPPING_TESTS = '''
import pytest

def test_that_runs():
    assert True

@pytest.mark.skipif(True, reason="needs a thing this machine lacks")
def test_that_skips():
    assert True
'''


def run_pytest(folder: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True)


def test_a_skip_fails_the_run_in_ci_and_only_reports_its_reason_elsewhere(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_policy.py").write_text(SKIPPING_TESTS)

    elsewhere = run_pytest(tmp_path, ci=None)
    assert elsewhere.returncode == 0, elsewhere.stdout
    assert "1 passed, 1 skipped" in elsewhere.stdout and "needs a thing this machine lacks" in elsewhere.stdout

    in_ci = run_pytest(tmp_path, ci="true")
    assert in_ci.returncode == 1, in_ci.stdout
    assert "skipped in CI (CI=true), which counts as a failure" in in_ci.stdout
    assert "test_policy.py::test_that_skips: needs a thing this machine lacks" in in_ci.stdout


def test_the_allow_list_matches_a_test_with_any_parameters_or_a_whole_file():
    allowed = {"tests/test_a.py::test_gpu": "needs CUDA", "tests/test_b.py": "needs a GPU throughout"}
    assert ci_may_skip("tests/test_a.py::test_gpu", allowed)
    assert ci_may_skip("tests/test_a.py::test_gpu[bf16-2]", allowed)
    assert ci_may_skip("tests/test_b.py::test_anything", allowed)
    assert not ci_may_skip("tests/test_a.py::test_gpu_other", allowed)
    assert not ci_may_skip("tests/test_a.py::test_cpu", allowed)


def test_every_allowed_skip_gives_its_reason():
    assert all(isinstance(reason, str) and len(reason) > 20 for reason in CI_MAY_SKIP.values())
