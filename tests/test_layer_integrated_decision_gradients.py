"""Layer IDG on the token embeddings of a small text classifier trained here."""

import pytest
import torch
from models import dense_path_reference
from torch import nn

from captum_idg import IntegratedDecisionGradients, LayerIntegratedDecisionGradients

VOCAB, LENGTH, PAD, GOOD, BAD = 12, 6, 0, 1, 2


class TextNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 8)
        self.mix = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def from_embeddings(self, embedded, lengths_scale=1.0):
        hidden = torch.tanh(self.mix(embedded)).mean(dim=1) * lengths_scale
        return self.head(hidden)

    def forward(self, tokens, lengths_scale=1.0):
        return self.from_embeddings(self.embedding(tokens), lengths_scale)


@pytest.fixture(scope="module")
def trained():
    """Class 1 ("positive") iff the sentence has more GOOD than BAD tokens."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, VOCAB, (512, LENGTH), generator=g)
    for row in tokens:
        for word in (GOOD, BAD):
            count = int(torch.randint(0, 3, (1,), generator=g))
            row[torch.randperm(LENGTH, generator=g)[:count]] = word
    labels = ((tokens == GOOD).sum(1) > (tokens == BAD).sum(1)).long()
    model = TextNet().double()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(tokens), labels).backward()
        optimiser.step()
    accuracy = (model(tokens).argmax(1) == labels).double().mean().item()
    assert accuracy > 0.9, accuracy
    return model.eval()


def sentences():
    return torch.tensor([[5, GOOD, 7, 8, GOOD, 4], [GOOD, 9, BAD, BAD, 3, 6]])


def test_equals_idg_on_the_embeddings(trained):
    tokens = sentences()
    baseline = torch.full_like(tokens, PAD)
    layer = LayerIntegratedDecisionGradients(trained, trained.embedding)
    ours, delta = layer.attribute(tokens, baseline, target=[1, 0], n_steps=16,
                                  return_convergence_delta=True)
    direct, direct_delta = IntegratedDecisionGradients(trained.from_embeddings).attribute(
        trained.embedding(tokens).detach(), trained.embedding(baseline).detach(), target=[1, 0],
        n_steps=16, return_convergence_delta=True)
    torch.testing.assert_close(ours, direct)
    torch.testing.assert_close(delta, direct_delta)


def test_matches_a_dense_float64_reference(trained):
    tokens, baseline = sentences()[1:], torch.full((1, LENGTH), PAD)
    with torch.no_grad():
        x, b = trained.embedding(tokens)[0], trained.embedding(baseline)[0]
    _, reference = dense_path_reference(
        lambda flat: trained.from_embeddings(flat.view(-1, LENGTH, 8)), x.flatten(), b.flatten(), 0
    )
    ours = LayerIntegratedDecisionGradients(trained, trained.embedding).attribute(
        tokens, baseline, target=0, n_steps=256, rescale=False)
    error = (ours.flatten() - reference).norm() / reference.norm()
    assert error < 1e-3, error
    # for the negative class, the two BAD words carry the decision and the
    # GOOD word speaks against it
    per_token = ours[0].sum(dim=1)
    assert set(per_token.topk(2).indices.tolist()) == {2, 3}
    assert per_token.argmin().item() == 0


def test_layer_input_and_forward_args(trained):
    tokens, baseline = sentences(), torch.full((2, LENGTH), PAD)
    with torch.no_grad():
        embedded = trained.embedding(tokens)
    to_input = LayerIntegratedDecisionGradients(trained, trained.mix).attribute(
        tokens, baseline, target=1, additional_forward_args=0.5, n_steps=12,
        attribute_to_layer_input=True, method="riemann_middle")
    direct = IntegratedDecisionGradients(trained.from_embeddings).attribute(
        embedded, trained.embedding(baseline).detach(), target=1, additional_forward_args=0.5,
        n_steps=12, method="riemann_middle")
    torch.testing.assert_close(to_input, direct)


def test_model_is_left_without_hooks(trained):
    LayerIntegratedDecisionGradients(trained, trained.embedding).attribute(
        sentences(), target=1, n_steps=4)
    assert not trained.embedding._forward_hooks and not trained.embedding._forward_pre_hooks
