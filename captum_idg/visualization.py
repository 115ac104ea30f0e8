"""Per-feature attributions of tabular models as a bar chart, in the manner of Captum's
``captum.attr.visualization`` (which draws images, text and time series, not tables)."""

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from captum_idg._validation import check_count, check_values


def visualize_feature_attr(
    attr: Tensor,
    feature_names: Optional[Sequence[str]] = None,
    plt_fig_axis: Optional[Tuple[Figure, Axes]] = None,
    max_features: Optional[int] = None,
    title: Optional[str] = None,
    fig_size: Tuple[int, int] = (6, 4),
    use_pyplot: bool = True,
) -> Tuple[Figure, Axes]:
    r"""
    Draws the attributions of tabular features as horizontal bars, largest
    magnitude on top, positive in green and negative in red (the ends of
    Captum's ``RdYlGn`` colour map). For several examples the bar is the mean
    and the whisker its standard deviation.

    Args:

        attr (Tensor): Attributions of one example ``(F,)``, or of several
                    ``(N, F)`` (a batch, e.g. from
                    :class:`~captum_idg.IntegratedDecisionGradients`).
        feature_names (sequence of str, optional): One name per feature.
                    Default: None (``feature 0``, ``feature 1``, ...)
        plt_fig_axis (tuple, optional): Figure and axis to draw on, as in
                    Captum. Default: None (a new figure)
        max_features (int, optional): Draw only the largest this many.
                    Default: None (all)
        title (str, optional): Title of the plot. Default: None
        fig_size (tuple, optional): Size of a new figure. Default: (6, 4)
        use_pyplot (bool, optional): Create the figure with pyplot (shown in
                    notebooks), else a bare ``Figure``. Default: True

    Returns:
        *tuple* of **figure** and **axis**, as Captum's
        ``visualize_image_attr`` returns them.

    Examples::

        >>> attributions = IntegratedDecisionGradients(mlp).attribute(rows, target=0)
        >>> fig, ax = visualize_feature_attr(attributions, feature_names=columns)
        >>> fig.savefig("features.png")
    """
    check_values("attr", attr)
    values = attr.detach().to("cpu", torch.float64)
    values = values[None] if values.dim() == 1 else values
    if values.dim() != 2 or values.shape[1] == 0:
        raise ValueError(f"attr must have shape (F,) or (N, F), got {tuple(attr.shape)}")
    count = values.shape[1]
    names = [f"feature {i}" for i in range(count)] if feature_names is None else feature_names
    if len(names) != count:
        raise ValueError(f"feature_names has {len(names)} names for {count} features")
    if max_features is not None:
        check_count("max_features", max_features, 1)
    mean = values.mean(0).numpy()
    spread = values.std(0).numpy() if values.shape[0] > 1 else None
    order = np.argsort(-np.abs(mean))[:max_features][::-1]  # the largest on top
    if plt_fig_axis is None:
        if use_pyplot:
            import matplotlib.pyplot as plt

            fig, axis = plt.subplots(figsize=fig_size)
        else:
            fig = Figure(figsize=fig_size)
            axis = fig.subplots()
    else:
        fig, axis = plt_fig_axis
    colours = colormaps["RdYlGn"]([0.1 if v < 0 else 0.9 for v in mean[order]])
    axis.barh(np.arange(len(order)), mean[order], color=colours,
              xerr=None if spread is None else spread[order], ecolor="0.3", capsize=2)
    axis.set_yticks(np.arange(len(order)), [names[i] for i in order])
    axis.axvline(0.0, color="0.3", linewidth=0.8)
    axis.set_xlabel("attribution" if spread is None else
                    f"attribution (mean and s.d. over {values.shape[0]} examples)")
    if title:
        axis.set_title(title)
    fig.tight_layout()
    return fig, axis
