"""What a Captum user expects by default: IG's sign and sums, warnings at their own line,
train-mode and dtype rules as Captum's."""

import inspect
import sys
import warnings

import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from captum_idg import IntegratedDecisionGradients, LayerIntegratedDecisionGradients


def regression():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 1)).double().eval()


def test_by_default_a_falling_output_gets_igs_sign_and_sums_to_the_change():
    net = regression()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        change = net(x)[:, 0] - net(torch.zeros_like(x))[:, 0]
    falling = change < 0
    assert falling.sum() >= 10  # F(x) < F(x') for many of them
    idg = IntegratedDecisionGradients(net).attribute(x, target=0)
    ig = IntegratedGradients(net).attribute(x, target=0, n_steps=500)
    torch.testing.assert_close(idg.sum(1), change, rtol=1e-8, atol=1e-10)
    cosine = nn.functional.cosine_similarity(idg, ig)
    assert (cosine[falling] > 0.9).all(), cosine[falling]
    # the paper's raw map is one argument away: its sum is never negative
    raw = IntegratedDecisionGradients(net).attribute(x, target=0, rescale=False)
    assert (raw.sum(1) >= 0).all() and (nn.functional.cosine_similarity(raw, ig)[falling] < 0).all()
    # the authors' algorithm stays raw
    reference = IntegratedDecisionGradients(net).attribute(x, target=0, method="reference")
    assert (reference.sum(1) >= 0).all()


def test_an_lstm_with_dropout_in_training_mode_warns():
    class Classifier(nn.Module):
        def __init__(self, dropout):
            super().__init__()
            self.rnn = nn.LSTM(3, 8, num_layers=2, dropout=dropout, batch_first=True)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    x = torch.randn(2, 5, 3)
    with pytest.warns(UserWarning, match="training mode with LSTM"):
        IntegratedDecisionGradients(Classifier(0.1)).attribute(x, target=0, n_steps=8)
    with warnings.catch_warnings():  # no dropout: the mode changes nothing
        warnings.simplefilter("error")
        IntegratedDecisionGradients(Classifier(0.0)).attribute(x, target=0, n_steps=8)


def test_a_module_whose_forward_reads_training_warns():
    class NoisyInTraining(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 2)

        def forward(self, x):
            return self.linear(x + torch.randn_like(x) if self.training else x)

    with pytest.warns(UserWarning, match="training mode with NoisyInTraining"):
        IntegratedDecisionGradients(NoisyInTraining()).attribute(torch.randn(2, 3), target=0,
                                                                 n_steps=8)


def test_a_model_whose_output_does_not_depend_on_the_input_warns_at_the_callers_line():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    nn.init.zeros_(net[2].weight)  # an initialised-to-zero head, as torchvision's ViT
    for rescale in (True, False):
        with pytest.warns(UserWarning, match="3 of 3 examples.*does not move") as caught:
            attributions = IntegratedDecisionGradients(net).attribute(
                torch.randn(3, 4), target=1, rescale=rescale)
        line = inspect.currentframe().f_lineno - 2
        assert (attributions == 0).all()
        assert len(caught) == 1 and caught[0].filename == __file__
        assert caught[0].lineno == line


def test_a_negligible_change_warns_too():
    class AlmostConstant(nn.Module):
        def forward(self, x):
            return 1e3 + 1e-4 * x.sum(1, keepdim=True)

    x = torch.full((2, 4), 0.5)  # a change of 2e-4: 3 units of float32 rounding at 1e3
    with pytest.warns(UserWarning, match="does not move"):
        IntegratedDecisionGradients(AlmostConstant()).attribute(x, target=0, n_steps=8)
    with warnings.catch_warnings():  # a small change that is not rounding noise
        warnings.simplefilter("error")
        IntegratedDecisionGradients(AlmostConstant()).attribute(100 * x, target=0, n_steps=8)


def test_the_no_change_warning_points_at_the_callers_line():
    class StepAtHalf(nn.Module):
        def forward(self, x):
            return 10.0 * torch.sigmoid(1e4 * (x.sum(1, keepdim=True) - 0.5))

    x = torch.ones(2, 1, dtype=torch.float64)
    with pytest.warns(UserWarning, match="saw no change") as caught:
        IntegratedDecisionGradients(StepAtHalf()).attribute(x, target=0, n_steps=4,
                                                             method="riemann_middle")
    line = inspect.currentframe().f_lineno - 2
    assert caught[0].filename == __file__ and caught[0].lineno == line


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_comes_back_in_float32_as_captum_igs(dtype):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(dtype).eval()
    x = torch.randn(2, 3).to(dtype)
    theirs, their_delta = IntegratedGradients(net).attribute(x, target=0, n_steps=16,
                                                             return_convergence_delta=True)
    ours, delta = IntegratedDecisionGradients(net).attribute(x, target=0, n_steps=16,
                                                             return_convergence_delta=True)
    assert ours.dtype == theirs.dtype == torch.float32
    assert delta.dtype == their_delta.dtype == torch.float32
    torch.testing.assert_close(ours.sum(1), theirs.sum(1), rtol=0.05, atol=0.02)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes need Python 3.11")
def test_inputs_of_another_dtype_than_the_model_get_a_hint():
    net = nn.Linear(3, 2)
    with pytest.raises(RuntimeError) as caught:
        IntegratedDecisionGradients(net).attribute(torch.randn(2, 3).half(), target=0)
    assert "torch.autocast" in "".join(caught.value.__notes__)


def test_layer_idg_defaults_to_rescaled_too():
    torch.manual_seed(3)
    embedding, head = nn.Embedding(10, 4).double(), nn.Linear(4, 1).double()

    def forward(ids):
        return head(torch.tanh(embedding(ids)).sum(1))

    ids = torch.randint(1, 10, (3, 6), generator=torch.Generator().manual_seed(4))
    attributions = LayerIntegratedDecisionGradients(forward, embedding).attribute(
        ids, baselines=0, target=0)
    with torch.no_grad():
        change = forward(ids)[:, 0] - forward(torch.zeros_like(ids))[:, 0]
    torch.testing.assert_close(attributions.sum((1, 2)), change, rtol=1e-8, atol=1e-10)
