"""Writing generated files, or checking them: what ``alerts.generate`` and
``dashboards.build`` share (kubernetes-mixin style: CI regenerates and fails on any diff)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alerts.config import ROOT


def main(
    outputs: dict[Path, str], *, command: str, description: str, argv: list[str] | None
) -> int:
    """``command [--check]``: write every file of ``outputs`` whose text differs, or with
    ``--check`` write nothing and exit 1 naming each file that differs."""
    parser = argparse.ArgumentParser(prog=command, description=description)
    parser.add_argument("--check", action="store_true", help="fail when a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date (run {command}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0
