"""The core imports nothing from the extras: a student can lift it out and read it alone.

The core is the list the README's reading path shows (``report.reading_path.CORE_FILES``, written
once). Each core file's imports are read with ``ast``, not run: a core file may import the standard
library, the installed packages and other core files, never another module of this project. The one
seam is ``data/assets.py``, the small function the core calls to get the embedded teacher and data,
whose decoding (``embedded/``) stays outside.
"""
import ast
from pathlib import Path

import pytest

from report.reading_path import CORE_FILES

ROOT = Path(__file__).resolve().parent.parent
CORE = [path for path, _ in CORE_FILES]
SEAMS = {"data/assets.py": ("embedded",)}
PROJECT = {entry.stem if entry.suffix == ".py" else entry.name for entry in ROOT.iterdir()
           if (entry.suffix == ".py" or (entry / "__init__.py").is_file()) and not entry.name.startswith(".")}


def module_file(module: str) -> str | None:
    """The project file a module name refers to (``lora.lora`` -> ``lora/lora.py``), or None for a package."""
    path = Path(*module.split("."))
    if (ROOT / path.with_suffix(".py")).is_file():
        return path.with_suffix(".py").as_posix()
    return None if (ROOT / path / "__init__.py").is_file() else f"{path.as_posix()}.py"


def project_imports(path: str) -> set[str]:
    """The modules of this project that the file imports, by name, wherever in the file the import is."""
    modules = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"), path)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import; name the module"
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names
                           if (ROOT / Path(*node.module.split("."), f"{alias.name}.py")).is_file())
    return {module for module in modules if module.split(".")[0] in PROJECT}


def core_packages() -> set[str]:
    return {str(Path(path).parent) for path in CORE if "/" in path}


def allowed(path: str, module: str) -> bool:
    if module.split(".")[0] in SEAMS.get(path, ()):
        return True
    file = module_file(module)
    if file is None:  # a package: its __init__ must be core (a folder of core files)
        return module in core_packages()
    return file in CORE


def test_the_core_list_names_existing_files_once():
    assert len(CORE) == len(set(CORE))
    assert [path for path in CORE if not (ROOT / path).is_file()] == []


@pytest.mark.parametrize("path", CORE)
def test_a_core_file_imports_only_the_core(path):
    outside = sorted(module for module in project_imports(path) if not allowed(path, module))
    assert outside == [], f"{path} imports {outside}, which are not core files (report/reading_path.py)"


@pytest.mark.parametrize("package", sorted(core_packages()))
def test_a_core_packages_init_imports_only_the_core(package):
    init = f"{package}/__init__.py"
    outside = sorted(module for module in project_imports(init) if not allowed(init, module))
    assert outside == []


def test_the_check_sees_an_import_of_the_extras():
    """The check itself: a core file importing an extra, even inside a function, is caught."""
    assert "report.model_card" in project_imports("report/__main__.py")
    assert not allowed("train.py", "report.model_card") and not allowed("train.py", "embedded.e5_small")
    assert allowed("data/assets.py", "embedded.e5_small") and allowed("train.py", "lora.lora")
    assert allowed("train.py", "distill") and not allowed("train.py", "report")


def test_the_web_apps_core_stays_small_enough_to_read_alone():
    assert len((ROOT / "webapp" / "app.py").read_text(encoding="utf-8").splitlines()) <= 150
