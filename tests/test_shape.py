"""Guards on the package's shape: independent modules, exports, the wheel."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import integration_automation_patterns as package

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "src" / "integration_automation_patterns"
PATTERN_MODULES = sorted(
    p.stem for p in PACKAGE_DIR.glob("*.py") if not p.stem.startswith("_")
)
ALLOWED_LOCAL = {"_types"}


def foreign_imports(source: str) -> list[str]:
    """Return every import in ``source`` that is neither stdlib nor ``_types``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if not _is_stdlib(a.name)]
        elif isinstance(node, ast.ImportFrom):
            found += _foreign_from(node)
    return found


def _foreign_from(node: ast.ImportFrom) -> list[str]:
    module = node.module or ""
    if node.level == 0:
        return [] if _is_stdlib(module) else [module]
    if node.level == 1 and module in ALLOWED_LOCAL:
        return []
    dots = "." * node.level
    return [f"{dots}{module}" if module else f"{dots}{a.name}" for a in node.names]


def _is_stdlib(name: str) -> bool:
    top = name.split(".", maxsplit=1)[0]
    return top in sys.stdlib_module_names or top == "__future__"


def export_order(name: str) -> tuple[int, str]:
    """Sort as ruff's RUF022 does: CONSTANTS, then Classes, then the rest."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def test_there_are_pattern_modules_to_check() -> None:
    """The independence check below has modules to look at."""
    assert "_types" not in PATTERN_MODULES
    assert PATTERN_MODULES, "no pattern modules found"


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_pattern_module_imports_only_stdlib_and_types(module: str) -> None:
    """A pattern module can be copied out with _types.py alone."""
    source = (PACKAGE_DIR / f"{module}.py").read_text(encoding="utf-8")
    assert foreign_imports(source) == []


def test_types_module_imports_only_stdlib() -> None:
    """_types itself depends on nothing but the standard library."""
    source = (PACKAGE_DIR / "_types.py").read_text(encoding="utf-8")
    assert foreign_imports(source) == []


@pytest.mark.parametrize(
    ("source", "culprit"),
    [
        ("from .retry import retry\n", ".retry"),
        ("from . import saga\n", ".saga"),
        ("import requests\n", "requests"),
        ("from integration_automation_patterns.outbox import Inbox\n", "x"),
        ("def f():\n    import psycopg\n", "psycopg"),
    ],
)
def test_independence_check_catches_a_foreign_import(
    tmp_path: Path, source: str, culprit: str
) -> None:
    """A synthetic module importing another pattern or a package is caught."""
    synthetic = tmp_path / "synthetic.py"
    synthetic.write_text("import json\nfrom ._types import Clock\n" + source)

    found = foreign_imports(synthetic.read_text())

    assert found
    assert culprit == "x" or culprit in found


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_every_error_is_drawn_in_the_error_tree(module: str) -> None:
    """IntegrationError's docstring names every error class a module defines."""
    from integration_automation_patterns._types import IntegrationError

    mod = importlib.import_module(f"{package.__name__}.{module}")
    errors = [
        name
        for name, obj in vars(mod).items()
        if isinstance(obj, type)
        and issubclass(obj, IntegrationError)
        and obj.__module__ == mod.__name__
    ]
    tree = IntegrationError.__doc__ or ""
    assert [e for e in errors if f" {e} " not in tree] == []


def test_types_module_stays_small() -> None:
    """The shared module is well under 300 lines."""
    lines = (PACKAGE_DIR / "_types.py").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 280


def test_root_all_is_sorted_and_matches_the_modules() -> None:
    """__all__ lists every module's public names and __version__, sorted."""
    expected = {"__version__"}
    for module in PATTERN_MODULES:
        expected |= set(importlib.import_module(f"{package.__name__}.{module}").__all__)
    expected |= {
        "SYSTEM_CLOCK",
        "Clock",
        "ConfigurationError",
        "IntegrationError",
        "JSONObject",
        "JSONScalar",
        "JSONValue",
        "Jitter",
        "ManualClock",
        "RetryPolicy",
        "SystemClock",
        "new_event_id",
    }

    assert list(package.__all__) == sorted(package.__all__, key=export_order)
    assert set(package.__all__) == expected
    for name in package.__all__:
        assert hasattr(package, name), name


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_module_all_is_sorted_and_resolves(module: str) -> None:
    """Each module's __all__ is sorted and names only what it defines."""
    mod = importlib.import_module(f"{package.__name__}.{module}")
    assert list(mod.__all__) == sorted(mod.__all__, key=export_order)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel once for the packaging checks."""
    outdir = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(outdir),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = outdir.glob("*.whl")
    return built


@pytest.mark.slow
def test_wheel_imports_in_a_venv_holding_nothing_else(
    wheel: Path, tmp_path: Path
) -> None:
    """Installed alone, without dependencies, the package imports and has a version."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    seeded = _installed(python)  # what the venv itself brings (pip, ...)
    install = [str(python), "-m", "pip", "install", "--no-index", "--no-deps"]
    subprocess.run([*install, "--quiet", str(wheel)], check=True)

    out = subprocess.run(
        [
            str(python),
            "-c",
            "import integration_automation_patterns as m; print(m.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )

    assert out.stdout.strip() == package.__version__
    assert _installed(python) - seeded == {
        f"integration-automation-patterns=={package.__version__}"
    }


def _installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(listing.stdout.split())


@pytest.mark.slow
def test_wheel_holds_every_module_and_no_dependency(wheel: Path) -> None:
    """The built wheel ships all modules and py.typed and requires nothing."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())

    prefix = "integration_automation_patterns/"
    for module in [*PATTERN_MODULES, "_types", "__init__"]:
        assert f"{prefix}{module}.py" in names
    assert f"{prefix}py.typed" in names
    runtime = [
        r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r
    ]
    assert runtime == []
    assert metadata["Version"] == package.__version__
    assert metadata["Requires-Python"] == ">=3.10"
