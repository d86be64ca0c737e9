"""The repository's folders, for tests at any depth of tests/ (on sys.path through pytest's ``pythonpath``)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
