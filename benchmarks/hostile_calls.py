"""Hundreds of hostile calls to every class and metric, and what each one got.

Every call crosses a class (or metric) with one hostile ingredient: a bad
argument, a model that breaks on part of the path, a model in train mode, odd
shapes and dtypes, huge step counts. Each outcome is classified:

- ok: finite attributions of the right shape, nothing mutated;
- clear: a ValueError/TypeError (or an announced UserWarning with a correct
  result) whose message names the argument, the examples or forward_func, or
  the model's own exception with a note of what it was called with;
- obscure: any other exception, or an error message that names nothing;
- nan, mutation, hang (over 60 s): the failures the package must not have.

    python benchmarks/hostile_calls.py            # the table, then every non-ok call
"""

import signal
import warnings
from collections import Counter
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

from captum_idg import (
    AdaptiveIntegratedGradients,
    AdversarialGradientIntegration,
    GuidedIntegratedGradients,
    ImportantDirectionGradientIntegration,
    IntegratedDecisionGradients,
    LayerIntegratedDecisionGradients,
    LeftIntegratedGradients,
)
from captum_idg.metrics import deletion, insertion

NAMES = ("inputs", "baselines", "target", "additional_forward_args", "n_steps", "method",
         "internal_batch_size", "n_probe_steps", "tolerance", "threshold", "epsilon",
         "max_iter", "false_classes", "input_range", "fraction", "max_dist", "forward_func",
         "attributions", "baseline", "score", "blur", "pixels_per_step", "layer", "example",
         "training mode", "rescale", "NaN or inf", "grad_fn", "max_examples_per_batch")
TIMEOUT = 60


def mlp(train: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)]
    if train:
        layers.insert(1, nn.BatchNorm1d(8))
        layers.insert(3, nn.Dropout(0.2))
    return nn.Sequential(*layers).train(train)


class Broken(nn.Module):
    """NaN (or inf) where the input's sum passes 0.5; ``flat`` gives a zero gradient there."""

    def __init__(self, value: float, flat: bool) -> None:
        super().__init__()
        self.model, self.value, self.flat = mlp(), value, flat

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.model(z)
        broken = (z.sum(1, keepdim=True) > 0.5).expand_as(out)
        if self.flat:
            return torch.where(broken, torch.full_like(out, self.value), out)
        return out + torch.where(broken, self.value * z.sum(1, keepdim=True), 0 * out)


class WithScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = mlp()

    def forward(self, z, scale):
        return self.model(z) * scale


def good(method) -> Dict:
    kwargs = dict(inputs=torch.randn(3, 4, generator=torch.Generator().manual_seed(1)),
                  target=1)
    if method is AdversarialGradientIntegration:
        kwargs["max_iter"] = 3
    elif method is not None:
        kwargs["n_steps"] = 8
    return kwargs


def nan_tensor(shape):
    t = torch.randn(*shape)
    t.view(-1)[1] = float("nan")
    return t


COMMON = {  # case: (model factory or None, argument overrides)
    "list inputs": (None, dict(inputs=[[0.0] * 4] * 3)),
    "int inputs": (None, dict(inputs=torch.ones(3, 4, dtype=torch.long))),
    "bool inputs": (None, dict(inputs=torch.ones(3, 4, dtype=torch.bool))),
    "NaN inputs": (None, dict(inputs=nan_tensor((3, 4)))),
    "inf inputs": (None, dict(inputs=torch.full((3, 4), float("inf")))),
    "empty batch": (None, dict(inputs=torch.zeros(0, 4))),
    "scalar input": (None, dict(inputs=torch.tensor(1.0))),
    "no batch dimension": (None, dict(inputs=torch.ones(4))),
    "3-D inputs": (None, dict(inputs=torch.ones(3, 2, 4))),
    "wrong feature count": (None, dict(inputs=torch.ones(3, 5))),
    "float64 inputs": (None, dict(inputs=torch.ones(3, 4, dtype=torch.float64))),
    "huge inputs": (None, dict(inputs=torch.full((3, 4), 1e30))),
    "tiny inputs": (None, dict(inputs=torch.full((3, 4), 1e-30))),
    "zero inputs": (None, dict(inputs=torch.zeros(3, 4))),
    "target 3": (None, dict(target=3)),
    "target -1": (None, dict(target=-1)),
    "target list short": (None, dict(target=[0, 1])),
    "target list of floats": (None, dict(target=[0.0, 1.0, 2.0])),
    "target list of tuples": (None, dict(target=[(0,), (1,), (2,)])),
    "target tuple": (None, dict(target=(1,))),
    "target float tensor": (None, dict(target=torch.tensor([0.0, 1.0, 2.0]))),
    "target bool tensor": (None, dict(target=torch.tensor([True, False, True]))),
    "target 2-D": (None, dict(target=torch.zeros(3, 1, dtype=torch.long))),
    "target string": (None, dict(target="cat")),
    "target None": (None, dict(target=None)),
    "target per example": (None, dict(target=torch.tensor([0, 1, 2]))),
    "forward args wrong batch": (WithScale, dict(additional_forward_args=torch.ones(2, 1))),
    "forward args string": (WithScale, dict(additional_forward_args="big")),
    "forward args missing": (WithScale, {}),
    "forward args right": (WithScale, dict(additional_forward_args=torch.ones(3, 1))),
    "NaN beyond a point": (lambda: Broken(float("nan"), False), {}),
    "inf beyond a point": (lambda: Broken(float("inf"), False), {}),
    "NaN with zero gradient": (lambda: Broken(float("nan"), True), {}),
    "train mode": (lambda: mlp(True), {}),
    "output detached": (lambda: (lambda z: mlp()(z).detach()), {}),
    "output a tuple": (lambda: (lambda z: (mlp()(z),)), {}),
    "output 1-D": (lambda: (lambda z: mlp()(z)[:, 0]), {}),
    "output wrong rows": (lambda: (lambda z: mlp()(z)[:1]), {}),
    "model raises": (lambda: (lambda z: z.reshape(7, -1)), {}),
}
STEPS = {
    "n_steps 0": dict(n_steps=0), "n_steps 1": dict(n_steps=1), "n_steps 2.5": dict(n_steps=2.5),
    "n_steps True": dict(n_steps=True), "n_steps 10^13": dict(n_steps=10**13),
    "n_steps 100000": dict(n_steps=100_000),
    "internal_batch_size 0": dict(internal_batch_size=0),
    "internal_batch_size -3": dict(internal_batch_size=-3),
    "internal_batch_size 1": dict(internal_batch_size=1),
    "internal_batch_size 1.5": dict(internal_batch_size=1.5),
    "baselines wrong shape": dict(baselines=torch.zeros(3, 5)),
    "baselines wrong batch": dict(baselines=torch.zeros(2, 4)),
    "baselines (1, 4)": dict(baselines=torch.zeros(1, 4)),
    "baselines NaN": dict(baselines=float("nan")),
    "baselines string": dict(baselines="zero"),
    "baselines float64": dict(baselines=torch.zeros(3, 4, dtype=torch.float64)),
    "baselines equal inputs": "same",
}
STRAIGHT = {
    "method gauss": dict(method="gauss"), "method None": dict(method=None),
    "method riemann_left": dict(method="riemann_left"),
    "n_probe_steps 1": dict(n_probe_steps=1), "n_probe_steps 10^13": dict(n_probe_steps=10**13),
    "tolerance 0": dict(tolerance=0.0), "tolerance NaN": dict(tolerance=float("nan")),
    "tolerance with a fixed rule": dict(tolerance=1e-3, method="gausslegendre"),
    "tolerance too tight": dict(tolerance=1e-12),
    "return delta": dict(return_convergence_delta=True),
}
PER_METHOD = {
    LeftIntegratedGradients: {"threshold 0": dict(threshold=0.0),
                              "threshold 2": dict(threshold=2.0),
                              "threshold NaN": dict(threshold=float("nan")),
                              "threshold_type mean": dict(threshold_type="mean")},
    IntegratedDecisionGradients: {"rescale": dict(rescale=True),
                                  "method reference": dict(method="reference"),
                                  "reference with probe": dict(method="reference",
                                                               n_probe_steps=5)},
    GuidedIntegratedGradients: {"fraction 0": dict(fraction=0.0), "fraction 2": dict(fraction=2),
                                "max_dist -1": dict(max_dist=-1.0),
                                "max_dist NaN": dict(max_dist=float("nan"))},
    AdversarialGradientIntegration: {
        "epsilon NaN": dict(epsilon=float("nan")), "epsilon inf": dict(epsilon=float("inf")),
        "epsilon 0": dict(epsilon=0.0), "input_range (NaN, 1)": dict(input_range=(float("nan"),
                                                                                  1.0)),
        "input_range (1, -1)": dict(input_range=(1.0, -1.0)),
        "input_range wrong shape": dict(input_range=(torch.zeros(5), 1.0)),
        "input_range string": dict(input_range="0-1"), "max_iter 0": dict(max_iter=0),
        "false_classes 0": dict(false_classes=0), "false_classes 9": dict(false_classes=9),
        "false_classes [1]": dict(false_classes=[1]),
        "false_classes 1.5": dict(false_classes=1.5)},
}
METRIC_CASES = {
    "attributions wrong shape": dict(attributions=torch.rand(2, 5, 6)),
    "attributions NaN": dict(attributions=torch.full((2, 6, 6), float("nan"))),
    "inputs 3-D": dict(inputs=torch.rand(2, 6, 6)),
    "inputs int": dict(inputs=torch.ones(2, 3, 6, 6, dtype=torch.long)),
    "inputs NaN": dict(inputs=nan_tensor((2, 3, 6, 6))),
    "target 5": dict(target=5), "target tuple": dict(target=(1,)),
    "pixels_per_step 0": dict(pixels_per_step=0), "pixels_per_step 1.5": dict(
        pixels_per_step=1.5),
    "score prob": dict(score="prob"), "score 1-D": dict(score=lambda out: out[:, 0]),
    "max_examples_per_batch 0": dict(max_examples_per_batch=0),
    "model NaN": dict(forward_func=lambda x: torch.full((len(x), 3), float("nan"))),
    "model train mode": dict(forward_func=nn.Sequential(nn.Flatten(), nn.Linear(108, 3),
                                                        nn.Dropout(0.5)).train()),
    "target per example": dict(target=[0, 2]),
}
INSERTION_ONLY = {"blur_kernel_size 4": dict(blur_kernel_size=4),
                  "blur_sigma NaN": dict(blur_sigma=float("nan")),
                  "blur_padding mirror": dict(blur_padding="mirror"),
                  "blur reflect": dict(blur_padding="reflect")}
DELETION_ONLY = {"baseline black": dict(baseline="black"),
                 "baseline NaN": dict(baseline=float("nan")),
                 "baseline per channel": dict(baseline=torch.zeros(1, 3, 1, 1)),
                 "baseline wrong shape": dict(baseline=torch.zeros(4))}


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def classify(call: Callable[[], object], watched: List[torch.Tensor]) -> Tuple[str, str]:
    before = [w.clone() for w in watched]
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = call()
    except Timeout:
        return "hang", f"over {TIMEOUT} s"
    except Exception as error:  # noqa: BLE001 - classifying every failure is the point
        message = "\n".join([str(error), *getattr(error, "__notes__", [])])
        named = any(name in message for name in NAMES)
        noted = any(note.startswith("captum-idg:") for note in getattr(error, "__notes__", []))
        clear = noted or isinstance(error, (ValueError, TypeError)) and named
        return ("clear" if clear else "obscure"), f"{type(error).__name__}: {message[:150]}"
    finally:
        signal.alarm(0)
    notes = [str(w.message)[:120] for w in caught if issubclass(w.category, UserWarning)]
    if any(not torch.equal(b, w) for b, w in zip(before, watched)):
        if any("training mode" in note for note in notes):  # announced, with what to do
            return "clear", "warned: " + notes[0]
        return "mutation", "an input or parameter changed"
    tensors = result if isinstance(result, tuple) else (result,)
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    if any(not torch.isfinite(t).all() for t in tensors):
        return "nan", "NaN or inf in the result"
    if notes:
        return "clear", "warned: " + notes[0]
    return "ok", ""


def calls() -> List[Tuple[str, str, Callable, List[torch.Tensor]]]:
    found = []
    methods = [IntegratedDecisionGradients, AdaptiveIntegratedGradients, LeftIntegratedGradients,
               ImportantDirectionGradientIntegration, GuidedIntegratedGradients,
               AdversarialGradientIntegration, LayerIntegratedDecisionGradients]
    for method in methods:
        cases = {name: (factory, overrides) for name, (factory, overrides) in COMMON.items()}
        if method is not AdversarialGradientIntegration:
            cases.update({name: (None, o) for name, o in STEPS.items()})
        if method in (IntegratedDecisionGradients, AdaptiveIntegratedGradients,
                      LeftIntegratedGradients, LayerIntegratedDecisionGradients):
            cases.update({name: (None, o) for name, o in STRAIGHT.items()})
        cases.update({name: (None, o) for name, o in PER_METHOD.get(method, {}).items()})
        for name, (factory, overrides) in cases.items():
            model = factory() if factory is not None else mlp()
            kwargs = good(method)
            if overrides == "same":
                overrides = dict(baselines=kwargs["inputs"].clone())
            kwargs.update(overrides)
            if method is LayerIntegratedDecisionGradients:
                layer_of = model if isinstance(model, nn.Module) else mlp()
                first = next(layer_of.modules()) if not isinstance(layer_of, nn.Sequential) \
                    else layer_of[0]
                explainer = method(model, first)
            else:
                explainer = method(model)
            watched = [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
            if isinstance(model, nn.Module):
                watched += [p.detach() for p in model.parameters()]
                watched += [b for b in model.buffers()]
            found.append((method.__name__, name, lambda e=explainer, k=kwargs: e.attribute(**k),
                          watched))
    for metric, extra in ((insertion, INSERTION_ONLY), (deletion, DELETION_ONLY)):
        for name, overrides in {**METRIC_CASES, **extra}.items():
            torch.manual_seed(0)
            kwargs = dict(forward_func=nn.Sequential(nn.Flatten(), nn.Linear(108, 3)),
                          inputs=torch.rand(2, 3, 6, 6), attributions=torch.rand(2, 6, 6),
                          target=1)
            if metric is insertion:
                kwargs["blur_kernel_size"] = 3
            kwargs.update(overrides)
            watched = [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
            if isinstance(kwargs["forward_func"], nn.Module):
                watched += [p.detach() for p in kwargs["forward_func"].parameters()]
            found.append((metric.__name__, name, lambda m=metric, k=kwargs: m(**k), watched))
    return found


def main() -> None:
    results = []
    for owner, name, call, watched in calls():
        outcome, detail = classify(call, watched)
        results.append((owner, name, outcome, detail))
    counts = Counter(outcome for _, _, outcome, _ in results)
    print(f"{len(results)} hostile calls: " + ", ".join(
        f"{counts[k]} {k}" for k in ("ok", "clear", "obscure", "nan", "mutation", "hang")))
    owners = list(dict.fromkeys(r[0] for r in results))
    print(f"{'class':40} {'calls':>5} " + " ".join(f"{k:>8}" for k in
                                                   ("ok", "clear", "obscure", "nan",
                                                    "mutation", "hang")))
    for owner in owners:
        mine = Counter(r[2] for r in results if r[0] == owner)
        print(f"{owner:40} {sum(mine.values()):5d} " + " ".join(
            f"{mine[k]:8d}" for k in ("ok", "clear", "obscure", "nan", "mutation", "hang")))
    print()
    for owner, name, outcome, detail in results:
        if outcome not in ("ok", "clear"):
            print(f"{outcome:9} {owner:38} {name:28} {detail}")


if __name__ == "__main__":
    main()
