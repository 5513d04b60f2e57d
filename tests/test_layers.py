"""The layers of DEVELOPERS.md, enforced: `uv run pytest` fails on an import that goes upward."""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_each_app_imports_only_from_below(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True) == 0
