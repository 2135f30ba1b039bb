"""PromQL text for the SLO rules: selectors of the sidecar's SLO file, and the SLI error ratio.

The sidecar matches ``le="2.0"`` and ``le="2"`` alike (numeric labels compare as numbers);
Prometheus 2 keeps the exposition's ``2.0`` and Prometheus 3 normalises it to ``2``, so a
numeric equality matcher becomes a regex accepting both spellings.
"""

from __future__ import annotations

import json

from sidecar.slo.spec import Matcher, Selector

NUMERIC_LABELS = frozenset({"le", "quantile"})


def quote(value: str) -> str:
    """A PromQL string literal (Go escaping, which JSON's matches for these values)."""
    return json.dumps(value)


def _matcher(matcher: Matcher) -> str:
    if matcher.label in NUMERIC_LABELS and matcher.op in ("=", "!=") and _is_number(matcher.value):
        number = float(matcher.value)
        spellings = [f"{number:g}"]
        if number.is_integer():
            spellings.append(f"{int(number)}.0")
        pattern = "|".join(spelling.replace(".", "\\.") for spelling in spellings)
        return f"{matcher.label}{'=~' if matcher.op == '=' else '!~'}{quote(pattern)}"
    return f"{matcher.label}{matcher.op}{quote(matcher.value)}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def selector(sel: Selector, job: str) -> str:
    """``sel`` restricted to a scrape job's matchers (``job="vigil"``)."""
    matchers = [job, *(_matcher(m) for m in sel.matchers)]
    return f"{sel.metric}{{{', '.join(part for part in matchers if part)}}}"


def side_increase(selectors: tuple[Selector, ...], job: str, window: str, by: str) -> str:
    """Sum of the increase of every series the selectors match, kept apart by ``by``.

    Several selectors are tagged with a ``vigil_term`` label before ``or`` so that series of
    different selectors with equal labels are all summed, never dropped by ``or``.
    """
    terms = [f"increase({selector(sel, job)}[{window}])" for sel in selectors]
    if len(terms) > 1:
        terms = [
            f'label_replace({term}, "vigil_term", "{index}", "", "")'
            for index, term in enumerate(terms)
        ]
    body = "\n  or\n  ".join(terms)
    return f"sum by ({by}) (\n  {body}\n)"


def error_ratio(
    good: tuple[Selector, ...], total: tuple[Selector, ...], job: str, window: str, by: str
) -> str:
    """1 - min(good / total, 1), like ``sidecar.slo.math.sli``; absent (never NaN) when the
    total did not increase, and a good side with no series at all counts as zero."""
    good_sum = side_increase(good, job, window, by)
    total_sum = side_increase(total, job, window, by)
    return (
        "1 - clamp_max(\n"
        f"  (\n{_indent(good_sum, 4)}\n    or\n    0 * {_indent(total_sum, 4).lstrip()}\n  )\n"
        f"  /\n  (\n{_indent(total_sum, 4)}\n    > 0\n  ),\n  1\n)"
    )


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())
