"""visualize_feature_attr draws what it is given: the bars are the means, sorted, signed colours."""

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from captum_idg.visualization import visualize_feature_attr  # noqa: E402


def test_bars_are_the_means_largest_on_top_with_signed_colours():
    attr = torch.tensor([[1.0, -4.0, 0.5], [3.0, -2.0, 0.1]])
    fig, axis = visualize_feature_attr(attr, ["a", "b", "c"], use_pyplot=False, title="t")
    bars = axis.patches
    widths = [bar.get_width() for bar in bars]
    labels = [label.get_text() for label in axis.get_yticklabels()]
    assert labels == ["c", "a", "b"]  # bottom to top: the largest magnitude on top
    assert widths == pytest.approx([0.3, 2.0, -3.0])
    green, red = bars[1].get_facecolor(), bars[2].get_facecolor()
    assert green[1] > green[0] and red[0] > red[1]
    assert "2 examples" in axis.get_xlabel() and axis.get_title() == "t"
    assert isinstance(fig, Figure)


def test_one_example_a_given_axis_and_the_largest_few():
    fig = Figure()
    axis = fig.subplots()
    _, drawn = visualize_feature_attr(torch.tensor([0.1, -0.3, 0.2, 0.0]), max_features=2,
                                      plt_fig_axis=(fig, axis))
    assert drawn is axis and [b.get_width() for b in axis.patches] == pytest.approx([0.2, -0.3])
    assert [label.get_text() for label in axis.get_yticklabels()] == ["feature 2", "feature 1"]


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="feature_names"):
        visualize_feature_attr(torch.ones(3), ["a"], use_pyplot=False)
    with pytest.raises(ValueError, match="attr must have shape"):
        visualize_feature_attr(torch.ones(2, 3, 4), use_pyplot=False)
    with pytest.raises(ValueError, match="attr contain NaN"):
        visualize_feature_attr(torch.tensor([1.0, float("nan")]), use_pyplot=False)
    with pytest.raises(ValueError, match="max_features"):
        visualize_feature_attr(torch.ones(3), max_features=0, use_pyplot=False)
