"""prometheus_client's instruments, with ``labels()`` remembering each child by its values.

prometheus_client checks the values and takes a lock on every ``labels()`` call (about
0.6 us here), and the hot paths ask for the same few children again for every event: about
40 calls per run. A child is looked up in a dict instead, after its first call.
"""

from __future__ import annotations

from typing import Any, TypeVar

import prometheus_client
from prometheus_client.metrics import MetricWrapperBase

T = TypeVar("T", bound="_Remembering")


class _Remembering(MetricWrapperBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._children_by_values: dict[tuple[object, ...], Any] = {}

    def labels(self: T, *labelvalues: object, **labelkwargs: object) -> T:
        if labelkwargs:
            return super().labels(*labelvalues, **labelkwargs)
        child = self._children_by_values.get(labelvalues)
        if child is None:
            child = super().labels(*labelvalues)
            self._children_by_values[labelvalues] = child
        return child


class Counter(_Remembering, prometheus_client.Counter):
    pass


class Gauge(_Remembering, prometheus_client.Gauge):
    pass


class Histogram(_Remembering, prometheus_client.Histogram):
    pass
