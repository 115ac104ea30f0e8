"""The IDG authors' released algorithm, written out as their code runs it
(util/attribution_methods/saliencyMethods.py at commit cde6c73: IDG, getSlopes,
getAlphaParameters), for one example, to test ``method="reference"`` against."""

import torch


def get_alpha_parameters(slopes, steps, step_size):
    slopes_0_1_norm = (slopes - torch.min(slopes)) / (torch.max(slopes) - torch.min(slopes))
    slopes_0_1_norm[0] = 0
    slopes_sum_1_norm = slopes_0_1_norm / torch.sum(slopes_0_1_norm)
    sample_placements_float = torch.mul(slopes_sum_1_norm, steps)
    sample_placements_int = sample_placements_float.type(torch.int)
    remaining_to_fill = steps - torch.sum(sample_placements_int)
    non_zeros = torch.where(sample_placements_int != 0)[0]
    sample_placements_float[non_zeros] = -1
    remaining_hi_lo = torch.flip(torch.sort(sample_placements_float)[1], dims=[0])
    sample_placements_int[remaining_hi_lo[0:remaining_to_fill]] = 1
    alphas = torch.zeros(steps, dtype=slopes.dtype)
    alpha_substep_size = torch.zeros(steps, dtype=slopes.dtype)
    alpha_start_index = 0
    alpha_start_value = 0
    for num_samples in sample_placements_int:
        if num_samples == 0:
            continue
        alphas[alpha_start_index: alpha_start_index + num_samples] = torch.linspace(
            alpha_start_value, alpha_start_value + step_size, num_samples + 1,
            dtype=slopes.dtype)[0:num_samples]
        alpha_substep_size[alpha_start_index: alpha_start_index + num_samples] = (
            step_size / num_samples)
        alpha_start_index += num_samples
        alpha_start_value += step_size
    return alphas, alpha_substep_size


def get_slopes(baseline, baseline_diff, model, steps, target_class):
    alphas = torch.linspace(0, 1, steps, dtype=baseline.dtype).reshape(steps, 1)
    with torch.no_grad():
        logits = model(baseline + alphas * baseline_diff)[:, target_class]
    slopes = torch.zeros(steps, dtype=baseline.dtype)
    x_diff = float(alphas[1] - alphas[0])
    for i in range(0, steps - 1):
        slopes[i + 1] = (logits[i + 1] - logits[i]) / x_diff
    return slopes, x_diff


def authors_idg(x, model, steps, baseline, target_class):
    """IDG of one example ``x`` (features,), as the authors' ``IDG`` computes it."""
    baseline_diff = x - baseline
    slopes, step_size = get_slopes(baseline, baseline_diff, model, steps, target_class)
    alphas, alpha_substep_size = get_alpha_parameters(slopes, steps, step_size)
    points = (baseline + alphas.reshape(steps, 1) * baseline_diff).requires_grad_()
    scores = model(points)[:, target_class]
    (gradients,) = torch.autograd.grad(scores, points, grad_outputs=torch.ones_like(scores))
    logits = scores.detach()
    slopes = torch.zeros(steps, dtype=x.dtype)
    for i in range(0, steps - 1):
        slopes[i + 1] = (logits[i + 1] - logits[i]) / (alphas[i + 1] - alphas[i])
    gradients = gradients * slopes.reshape(steps, 1) * alpha_substep_size.reshape(steps, 1)
    return gradients.mean(dim=0) * baseline_diff
