"""A learner's progress across the chapters: which build-it steps they have passed.

``check`` records a step here when it passes (``use`` too, when it takes the learner's function). The record is a
small JSON file in the user's data folder (``platformdirs.user_data_dir("dlcourse")``), never in the repository;
``$DLCOURSE_PROGRESS`` names another file, or ``off`` to record nothing (the tests and the grader set it).

    from dlcourse.course.checker import clear_progress, progress
    progress()          # a table: each chapter's steps, passed or not yet
    clear_progress()    # start again

(``progress()`` lives beside the registry of steps, in :mod:`dlcourse.course.checker`; this module only keeps the
record and draws it, so it imports nothing of the course.)
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import PROGRESS_ENV, progress_setting
from ..i18n import _

ENV = PROGRESS_ENV


def progress_file() -> Path | None:
    """Where progress is kept: ``$DLCOURSE_PROGRESS`` if set (``off``: nowhere), else the user's data folder."""
    setting = progress_setting()
    if setting.lower() in {"off", "0", "no", "false"}:
        return None
    if setting:
        return Path(setting).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("dlcourse", appauthor=False)) / "progress.json"


def _load(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    passed = data.get("passed", {}) if isinstance(data, dict) else {}
    return {k: float(v) for k, v in passed.items() if isinstance(k, str) and isinstance(v, (int, float))}


def record(name: str) -> None:
    """Note that step ``name`` passed now. Never raises: progress is a convenience, not part of the check."""
    path = progress_file()
    if path is None:
        return
    try:
        passed = _load(path)
        passed.setdefault(name, time.time())
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as f:
            json.dump({"passed": passed}, f, indent=1, sort_keys=True)
        os.replace(f.name, path)  # atomic: a crash never leaves half a file
    except OSError:
        pass


def passed_steps() -> dict[str, float]:
    """Step name -> when it first passed (seconds since the epoch)."""
    path = progress_file()
    return {} if path is None else _load(path)


def clear_progress() -> None:
    """Forget every recorded step."""
    path = progress_file()
    if path is not None:
        path.unlink(missing_ok=True)


def chapter_of(name: str) -> int:
    head = name.split(".", 1)[0]
    return int(head[2:]) if head.startswith("ch") and head[2:].isdigit() else 0


@dataclass
class Progress:
    """What ``progress()`` returns: shown as a table in a notebook, as text elsewhere."""

    steps: dict[int, list[str]]      # chapter -> its step names
    passed: dict[str, float]

    def summary(self) -> list[tuple[int, int, int]]:
        """(chapter, passed, total) for every chapter."""
        return [(ch, sum(s in self.passed for s in names), len(names)) for ch, names in sorted(self.steps.items())]

    def __str__(self) -> str:
        lines = []
        for ch, done, total in self.summary():
            marks = " ".join(("✓ " if s in self.passed else "· ") + s.split(".", 1)[1] for s in self.steps[ch])
            lines.append(_("chapter {chapter}: {done}/{total}  {marks}").format(chapter=ch, done=done, total=total,
                                                                               marks=marks))
        where = progress_file()
        lines.append(_("(kept in {where}; clear_progress() starts again)").format(where=where) if where
                     else _("(progress recording is off)"))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = []
        for ch, done, total in self.summary():
            cells = " ".join(f'<span title="{s}">{"✅" if s in self.passed else "⬜"} {s.split(".", 1)[1]}</span>'
                             for s in self.steps[ch])
            chapter = _("chapter {chapter}").format(chapter=ch)
            rows.append(f"<tr><td>{chapter}</td><td>{done}/{total}</td>"
                        f"<td style='text-align:left'>{cells}</td></tr>")
        headers = (_("chapter"), _("passed"), _("build-it steps"))
        return ("<table><tr><th>{}</th><th>{}</th><th style='text-align:left'>{}</th></tr>".format(*headers)
                + "".join(rows) + "</table>")


