"""Several references per example: the mean over the references, against the loop over them."""

import pytest
import torch
from torch import nn

from captum_idg import (
    AdaptiveIntegratedGradients,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LayerIntegratedDecisionGradients,
    LeftIntegratedGradients,
)
from captum_idg.baselines import dinucleotide_shuffle
from captum_idg.testing import DnaCNN, one_hot_dna

K = 3


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double().eval()


def loop_over_references(explainer, x, refs, **kwargs):
    r"""The slow obvious way: one call per reference, then the mean."""
    calls = [explainer.attribute(x, baselines=refs[:, k], **kwargs) for k in range(refs.shape[1])]
    if isinstance(calls[0], tuple):
        return tuple(torch.stack([c[i] for c in calls]).mean(0) for i in range(len(calls[0])))
    return torch.stack(calls).mean(0)


@pytest.mark.filterwarnings("ignore:the baseline of", "ignore:tolerance=")
@pytest.mark.parametrize("cls, settings", [
    (IntegratedDecisionGradients, dict(return_convergence_delta=True)),
    (IntegratedDecisionGradients, dict(rescale=False, return_convergence_delta=True)),
    (IntegratedDecisionGradients, dict(method="riemann_middle", rescale=False)),
    (IntegratedDecisionGradients, dict(tolerance=1e-2)),
    (AdaptiveIntegratedGradients, dict(return_convergence_delta=True)),
    (LeftIntegratedGradients, dict(return_convergence_delta=True)),
    (GuidedIntegratedGradients, {}),
    (ImportantDirectionGradientIntegration, {}),
])
def test_k_references_are_the_mean_of_one_call_each(cls, settings):
    net = model()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    refs = torch.randn(4, K, 6, generator=generator, dtype=torch.float64)
    explainer = cls(net)
    target = torch.tensor([0, 1, 2, 1])
    got = explainer.attribute(x, baselines=refs, target=target, n_steps=24, **settings)
    expected = loop_over_references(explainer, x, refs, target=target, n_steps=24, **settings)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    first = explainer.attribute(x, baselines=refs[:, 0], target=target, n_steps=24, **settings)
    maps = [r[0] if isinstance(r, tuple) else r for r in (got, first)]
    assert not torch.allclose(*maps)  # the other references count


def test_rescaled_sums_to_the_change_from_the_mean_reference():
    net = model()
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(3, 6, generator=generator, dtype=torch.float64)
    refs = torch.randn(3, 5, 6, generator=generator, dtype=torch.float64)
    attributions = IntegratedDecisionGradients(net).attribute(x, baselines=refs, target=1)
    with torch.no_grad():
        change = net(x)[:, 1] - net(refs.flatten(0, 1))[:, 1].view(3, 5).mean(1)
    torch.testing.assert_close(attributions.sum(1), change, rtol=1e-10, atol=1e-10)


def test_tuple_inputs_shared_references_and_per_example_forward_args():
    torch.manual_seed(3)
    net = nn.Bilinear(4, 2, 3).double()

    def forward(a, b, scale):
        return net(a, b) * scale[:, None]

    generator = torch.Generator().manual_seed(4)
    x = (torch.randn(2, 4, generator=generator, dtype=torch.float64),
         torch.randn(2, 2, generator=generator, dtype=torch.float64))
    shared = torch.randn(1, K, 4, generator=generator, dtype=torch.float64)  # one set for all
    scale = torch.tensor([1.0, 2.0], dtype=torch.float64)
    idg = IntegratedDecisionGradients(forward)
    got = idg.attribute(x, baselines=(shared, 0.5), target=[0, 2],
                        additional_forward_args=(scale,), n_steps=16)
    calls = [idg.attribute(x, baselines=(shared[:, k], 0.5), target=[0, 2],
                           additional_forward_args=(scale,), n_steps=16) for k in range(K)]
    for i in range(2):
        torch.testing.assert_close(got[i], torch.stack([c[i] for c in calls]).mean(0),
                                   rtol=0, atol=1e-10)


def test_layer_idg_on_an_embedding_with_k_reference_sequences():
    torch.manual_seed(5)

    class TokenModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(12, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, ids):
            return self.head(torch.tanh(self.embedding(ids)).mean(1))

    net = TokenModel().double().eval()
    ids = torch.randint(1, 12, (3, 7), generator=torch.Generator().manual_seed(6))
    refs = torch.randint(0, 12, (3, K, 7), generator=torch.Generator().manual_seed(7))
    layer = LayerIntegratedDecisionGradients(net, net.embedding)
    for rescale in (True, False):
        got, delta = layer.attribute(ids, baselines=refs, target=1, n_steps=16, rescale=rescale,
                                     return_convergence_delta=True)
        calls = [layer.attribute(ids, baselines=refs[:, k], target=1, n_steps=16,
                                 rescale=rescale, return_convergence_delta=True)
                 for k in range(K)]
        torch.testing.assert_close(got, torch.stack([c[0] for c in calls]).mean(0),
                                   rtol=0, atol=1e-10)
        torch.testing.assert_close(delta, torch.stack([c[1] for c in calls]).mean(0),
                                   rtol=0, atol=1e-10)


def test_misshapen_references_name_the_argument():
    idg = IntegratedDecisionGradients(model())
    x = torch.randn(4, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"baselines.*\(4, K, 6\)"):
        idg.attribute(x, baselines=torch.zeros(2, K, 6, dtype=torch.float64), target=0)
    with pytest.raises(ValueError, match="baselines.*same number of references"):
        IntegratedDecisionGradients(lambda a, b: model()(a + b)).attribute(
            (x, x), baselines=(torch.zeros(4, 2, 6, dtype=torch.float64),
                               torch.zeros(4, 3, 6, dtype=torch.float64)), target=0)


def test_four_sequences_with_a_hundred_shuffled_references_each_run_in_chunks():
    net = DnaCNN(seed=0, length=200).eval()
    x = sequences(4, 200, seed=1)
    refs = dinucleotide_shuffle(x, n_shuffles=100)
    rows = []
    net.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    attributions = IntegratedDecisionGradients(net).attribute(
        x, baselines=refs, target=0, n_steps=8, method="gausslegendre", internal_batch_size=400)
    assert attributions.shape == x.shape and torch.isfinite(attributions).all()
    assert max(rows) <= 400 and len(rows) > 4  # 400 pairs x 8 steps, in passes of 400 rows
    with torch.no_grad():
        change = net(x)[:, 0] - net(refs.flatten(0, 1))[:, 0].view(4, 100).mean(1)
    torch.testing.assert_close(attributions.flatten(1).sum(1), change, rtol=1e-4, atol=1e-5)


def sequences(n, length, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([one_hot_dna(length, generator) for _ in range(n)])


def dinucleotide_counts(one_hot):
    tokens = torch.where(one_hot.sum(0) > 0, one_hot.argmax(0), one_hot.shape[0])
    letters = one_hot.shape[0] + 1
    return torch.bincount(tokens[:-1] * letters + tokens[1:], minlength=letters ** 2)


def test_dinucleotide_shuffle_keeps_the_counts_and_shuffles():
    x = sequences(3, 300, seed=2)
    x[1, :, 17] = 0  # an unknown base is a letter of its own
    shuffles = dinucleotide_shuffle(x, n_shuffles=20, seed=3)
    assert shuffles.shape == (3, 20, 4, 300) and shuffles.dtype == x.dtype
    for i in range(3):
        for k in range(20):
            assert torch.equal(dinucleotide_counts(shuffles[i, k]), dinucleotide_counts(x[i]))
            assert torch.equal(shuffles[i, k, :, 0], x[i, :, 0])
            assert torch.equal(shuffles[i, k, :, -1], x[i, :, -1])
        # shuffled: most positions differ, and the shuffles differ from each other
        assert (shuffles[i, :, :, :].argmax(1) != x[i].argmax(0)).float().mean() > 0.5
        assert len({tuple(s.argmax(0).tolist()) for s in shuffles[i]}) == 20
    torch.testing.assert_close(dinucleotide_shuffle(x, 20, seed=3), shuffles)


def test_dinucleotide_shuffle_refuses_what_is_not_one_hot():
    with pytest.raises(ValueError, match="sequences must be one-hot"):
        dinucleotide_shuffle(torch.rand(2, 4, 10))
    with pytest.raises(ValueError, match="n_shuffles"):
        dinucleotide_shuffle(sequences(1, 10, seed=0), n_shuffles=0)
