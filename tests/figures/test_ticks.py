"""Log axes of iterations and learning rates tick at round numbers, with labels that do not collide."""
from __future__ import annotations

import numpy as np
import pytest

from figures.data import Summary
from figures.style import Panel, Series, draw_panels, log_tick_label


@pytest.mark.parametrize("value, label", [(1.0, "1"), (10.0, "10"), (1000.0, "1000"),
                                          (1e4, "$10^{4}$"), (0.2, "0.2"), (1e-4, "$10^{-4}$")])
def test_log_tick_labels_are_plain_numbers_or_powers_of_ten(value, label):
    assert log_tick_label(value) == label


@pytest.mark.parametrize("x", [
    [1.41421, 5.0, 14.8324, 46.0, 146.629, 681.175, 2154.0, 6813.22],  # pooled iterations
    [0.1, 0.3, 1.0, 1.9, 2.2],  # a learning-rate sweep crossing 2/β
])
def test_log_axis_ticks_are_round_and_labels_do_not_overlap(x):
    series = Series(panel="p", label="measured", quantity="q", role="measured", x=np.array(x),
                    points=[Summary(1.0 + i, 0.5 + i, 1.5 + i, 3) for i in range(len(x))])
    figure = draw_panels("t", [Panel(name="p", title="p", xlabel="x", ylabel="y", series=[series],
                                     xlog=True, ticks_at_data=False)])
    figure.draw_without_rendering()
    ax = figure.axes[0]
    low, high = ax.get_xlim()
    labels = [label for label in ax.get_xticklabels(which="both")
              if label.get_text() and low <= label.get_position()[0] <= high]
    positions = [label.get_position()[0] for label in labels]
    assert positions and not set(np.round(positions, 6)) & set(np.round(x, 6)) - {0.1, 1.0}
    for position in positions:  # 1, 2 or 5 times a power of ten
        mantissa = position / 10 ** np.floor(np.log10(position) + 1e-9)
        assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-6
    boxes = sorted((label.get_window_extent() for label in labels), key=lambda box: box.x0)
    assert all(left.x1 <= right.x0 for left, right in zip(boxes, boxes[1:]))
