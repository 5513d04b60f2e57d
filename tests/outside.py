"""Catch the test run reading a file beside the repository instead of inside it.

A fresh clone has nothing beside it, so a file read from the repository's parent folder
works on our machines and fails on everyone else's. An audit hook (installed once, for
the whole run, by `tests/conftest.py`) notes every file opened in that parent folder
outside the repository, and the run fails at the end if there was one. Temporary
folders, the virtualenv and the system are elsewhere and are not looked at; nor are
hidden folders beside it (a clone in a home folder has `~/.cache` there).
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMP = Path(tempfile.gettempdir()).resolve()

# Paths opened beside the repository during this run, in the order they were opened.
reads_beside: list[str] = []
_installed = False


def is_beside(path, *, root=ROOT, temp=TEMP) -> bool:
    """Is `path` in the repository's parent folder, but not in the repository?"""
    if isinstance(path, int):
        return False  # an already open file descriptor
    try:
        text = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    root, beside = str(root), str(Path(root).parent).rstrip(os.sep) + os.sep
    if not text.startswith(beside) or text == root or text.startswith(root + os.sep):
        return False
    if text[len(beside) :].startswith("."):
        return False
    # A repository cloned straight into the temporary folder (or above it) has pytest's
    # own temporary files beside it; one in a folder of its own there does not.
    temp = str(temp).rstrip(os.sep) + os.sep
    return not (temp.startswith(beside) and text.startswith(temp))


def _hook(event, args):
    if event == "open" and args and is_beside(args[0]):
        reads_beside.append(os.path.abspath(os.fsdecode(args[0])))


def install():
    # An audit hook cannot be removed again, so there is one for the whole process.
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def pytest_configure(config):
    install()


def pytest_sessionfinish(session, exitstatus):
    if reads_beside:
        listed = "\n  ".join(dict.fromkeys(reads_beside))
        sys.stderr.write(
            f"\nThe tests read files beside the repository ({ROOT.parent}), which a fresh "
            f"clone does not have:\n  {listed}\n"
        )
        session.exitstatus = 1
