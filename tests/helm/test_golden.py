"""The default render, compared with its golden file (`python -m tests.helm.golden` updates
it, and the diff of that file is what a reviewer reads)."""

from __future__ import annotations

import difflib

from tests.helm import chart, golden


def test_the_default_render_matches_its_golden_file():
    assert golden.GOLDEN.is_file(), "no golden file: run `python -m tests.helm.golden`"
    expected = golden.GOLDEN.read_text()
    actual = golden.golden_text()
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            "golden/default.yaml",
            "rendered",
            n=2,
        )
    )
    assert not diff, (
        f"the chart renders differently; if intended: python -m tests.helm.golden\n{diff}"
    )


def test_the_golden_file_notices_a_changed_manifest():
    objects = list(chart.default_objects())
    service = next(o for o in objects if o["kind"] == "Service")
    changed = {**service, "spec": {**service["spec"], "type": "NodePort"}}
    objects[objects.index(service)] = changed
    assert golden.golden_text(tuple(objects)) != golden.GOLDEN.read_text()
