"""The package's structure holds: layers and no cycles (import-linter), and nothing optional is
needed to import it or to ask any command for help."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Extras and GPU-only packages: none may be needed to import the package or print --help.
OPTIONAL = ("tensorrt", "polygraphy", "tritonclient", "onnxruntime_genai", "hypothesis", "importlinter", "pycuda",
            "matplotlib", "fastapi", "starlette", "uvicorn", "openai")


def test_layers_and_no_import_cycles():
    """The contracts in pyproject.toml ([tool.importlinter]): each layer imports only the layers below
    it (contract -> models -> reference -> export -> engine -> runtime -> compare | serving -> cli),
    and no package's modules import each other in a cycle."""
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint_imports, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_import_and_every_help_without_optional_packages():
    script = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ImportError(f"blocked optional package {{name}}")
sys.meta_path.insert(0, Block())
import fastav_export
from fastav_export.cli import COMMANDS, main
for argv in ([], *([name] for name in COMMANDS)):
    try:
        main([*argv, "--help"])
    except SystemExit as exc:
        assert exc.code == 0, (argv, exc.code)
print("ok", len(COMMANDS))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1].startswith("ok"), result.stderr[-3000:]
