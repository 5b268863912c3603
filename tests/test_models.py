"""Tests for cutmix.models: shapes, published parameter counts, the head contract that CAMs and feature-level
mixing rely on, gradients, memory layouts, and the errors of the name registry."""

from __future__ import annotations

import functools
import importlib.util

import pytest
import torch
from torch import nn

from cutmix.models import available_models, build_model, cifar_resnet, preact_resnet18, pyramidnet
from cutmix.models.pyramidnet import PyramidNet

OURS = ["resnet8", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "preact_resnet18",
        "pyramidnet110", "pyramidnet200"]
SMALL = [n for n in OURS if n != "pyramidnet200"]  # pyramidnet200 is only run forward once (it is big)

# Expected (channels, stride) of each stage's output for a 32x32 input. PyramidNet widths grow by alpha/(3n) per
# unit from 16: pyramidnet110 (n=18, alpha 64) ends its stages at 16+64/3 -> 37, 16+128/3 -> 59, 80; pyramidnet200
# (n=22, alpha 240, bottleneck x4) at 96, 176, 256 -> 384, 704, 1024 channels.
STAGES = {
    "resnet20": [(16, 1), (32, 2), (64, 4)],
    "resnet110": [(16, 1), (32, 2), (64, 4)],
    "preact_resnet18": [(64, 1), (128, 2), (256, 4), (512, 8)],
    "pyramidnet110": [(37, 1), (59, 2), (80, 4)],
    "pyramidnet200": [(384, 1), (704, 2), (1024, 4)],
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run this module single-threaded, then restore the setting.

    The batches here are tiny, so intra-op threads gain little, and when another process shares the cores OpenMP
    barriers make 2-thread convolutions of PyramidNet's many odd widths up to 50x slower (measured: 5 s vs 0.1 s).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.cache
def _model(name: str, num_classes: int = 10) -> nn.Module:
    """Each registered model built once per session (seeded), in eval mode so that forwards are deterministic."""
    torch.manual_seed(0)
    return build_model(name, num_classes).eval()


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_count(build) -> int:
    """Parameter count without allocating or initialising weights (PyramidNet-200 has 27M of them)."""
    with torch.device("meta"):
        return _count(build())


def _images(n: int = 2, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_exactly_our_models():
    assert sorted(available_models()) == sorted(OURS)


@pytest.mark.parametrize("name", SMALL)
def test_output_shape_and_head_contract(name):
    model = _model(name)
    x = _images()
    with torch.no_grad():
        logits = model(x)
        feats = model.forward_features(x)
        by_hand = model.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(feats, 1), 1))
    assert logits.shape == (2, 10) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == feats.shape[1] == model.num_features
    assert feats.ndim == 4 and feats.shape[0] == 2
    assert (feats >= 0).all(), "forward_features must return the map after the final ReLU"
    assert torch.equal(logits, by_hand)


def test_pyramidnet200_single_forward():
    """One forward of the CutMix paper's CIFAR model, checking shape, stage widths and the head at once."""
    model = _model("pyramidnet200", 100)
    seen = _stage_outputs(model, _images())
    with torch.no_grad():
        feats = model.forward_features(_images())
        logits = model.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(feats, 1), 1))
    assert logits.shape == (2, 100) and torch.isfinite(logits).all()
    assert feats.shape == (2, 1024, 8, 8)
    assert [(t.shape[1], 32 // t.shape[2]) for t in seen] == STAGES["pyramidnet200"]


def _stage_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of the modules in ``model.stage_names``, captured by forward hooks (as feature-level CutMix does)."""
    modules = dict(model.named_modules())
    seen: list[torch.Tensor] = []
    handles = [modules[n].register_forward_hook(lambda _m, _i, out: seen.append(out)) for n in model.stage_names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("name", [n for n in STAGES if n != "pyramidnet200"])
def test_stage_names_channels_and_strides(name):
    model = _model(name)
    expected_names = [f"layer{i}" for i in range(1, len(STAGES[name]) + 1)]
    assert model.stage_names == expected_names
    modules = dict(model.named_modules())
    assert all(n in modules for n in expected_names)
    seen = _stage_outputs(model, _images())
    assert [(t.shape[1], 32 // t.shape[2]) for t in seen] == STAGES[name]
    assert all(32 % t.shape[2] == 0 and t.shape[2] == t.shape[3] for t in seen)


@pytest.mark.parametrize(
    ("build", "published", "tolerance"),
    [
        pytest.param(lambda: pyramidnet(200, 240, True, 100), 26.8e6, 0.03, id="pyramidnet200-a240-c100"),
        pytest.param(lambda: build_model("pyramidnet200", 100), 26.8e6, 0.03, id="registry-pyramidnet200"),
        pytest.param(lambda: pyramidnet(110, 48, False, 10), 1.7e6, 0.05, id="pyramidnet110-a48"),
        pytest.param(lambda: build_model("resnet110", 10), 1.73e6, 0.05, id="resnet110"),
        pytest.param(lambda: build_model("resnet56", 10), 0.85e6, 0.05, id="resnet56"),
        pytest.param(lambda: build_model("resnet20", 10), 0.27e6, 0.05, id="resnet20"),
        pytest.param(lambda: build_model("preact_resnet18", 10), 11.17e6, 0.03, id="preact_resnet18"),
    ],
)
def test_parameter_counts_match_papers(build, published, tolerance):
    count = _meta_count(build)
    assert abs(count - published) <= tolerance * published, f"{count:,} parameters vs {published:,.0f} published"


def test_exact_parameter_counts():
    """Pinned counts: any change to the architectures shows up here (numbers measured on this implementation)."""
    counts = {n: _meta_count(functools.partial(build_model, n, 10)) for n in OURS}
    assert counts == {
        "resnet8": 78_042,
        "resnet20": 272_474,
        "resnet32": 466_906,
        "resnet44": 661_338,
        "resnet56": 855_770,
        "resnet110": 1_730_714,
        "preact_resnet18": 11_172_170,
        "pyramidnet110": 2_616_376,
        "pyramidnet200": 26_752_702,
    }


def test_pyramidnet_shortcuts_have_no_parameters():
    """All parameters sit in residual branches, stem, final BN and fc: the zero-padded shortcut adds none."""
    model = pyramidnet(20, 24, False, 10)
    shortcut_params = [n for n, _ in model.named_parameters() if "shortcut" in n]
    assert shortcut_params == []


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: cifar_resnet(8, 5), id="resnet8"),
        pytest.param(lambda: cifar_resnet(8, 5, width=0.5), id="resnet8-half-width"),
        pytest.param(lambda: preact_resnet18(5, width=8), id="preact-narrow"),
        pytest.param(lambda: pyramidnet(8, 12, False, 5), id="pyramidnet-basic"),
        pytest.param(lambda: pyramidnet(11, 12, True, 5), id="pyramidnet-bottleneck"),
    ],
)
def test_backward_reaches_every_parameter(build):
    torch.manual_seed(0)
    model = build().train()
    logits = model(_images(4, 16, 16))
    nn.functional.cross_entropy(logits, torch.arange(4) % 5).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", ["resnet20", "preact_resnet18", "pyramidnet110"])
def test_channels_last_matches_nchw(name):
    model = _model(name)
    x = _images(seed=1)
    with torch.no_grad():
        ref = model(x)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_channels_last_model_and_bottleneck_pyramidnet():
    torch.manual_seed(0)
    model = pyramidnet(20, 24, True, 10).eval()
    x = _images(seed=2)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [(8, 8), (9, 11), (13, 8), (64, 48)])
@pytest.mark.parametrize("name", ["resnet8", "preact_resnet18", "pyramidnet110"])
def test_any_input_size_of_at_least_8(name, size):
    with torch.no_grad():
        assert _model(name)(_images(1, *size)).shape == (1, 10)


def test_bottleneck_pyramidnet_odd_sizes():
    """Average-pooled shortcuts and strided convolutions must agree on odd sizes (ceil(h/2))."""
    with torch.no_grad():
        assert pyramidnet(11, 9, True, 3).eval()(_images(1, 9, 13)).shape == (1, 3)


def test_init_is_kaiming_and_identity_batchnorm():
    model = _model("resnet20")
    conv = model.layer2[0].conv1
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert abs(conv.weight.std().item() - (2 / fan_out) ** 0.5) < 0.15 * (2 / fan_out) ** 0.5
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)


def test_kwargs_override_registry_defaults():
    with torch.device("meta"):
        m = build_model("pyramidnet200", 10, depth=29, alpha=12)
        wide = build_model("resnet20", 10, width=2)
        bottle = build_model("pyramidnet110", 10, depth=20, alpha=30, bottleneck=True)
    assert isinstance(m, PyramidNet) and (m.depth, m.alpha, m.bottleneck) == (29, 12, True)
    assert m.num_features == (16 + 12) * 4
    assert wide.num_features == 128 and wide.layer1[0].conv1.out_channels == 32
    assert bottle.bottleneck and bottle.num_features == (16 + 30) * 4


@pytest.mark.parametrize("name", ["nope", "resnet21", "pyramidnet", ""])
def test_unknown_name_lists_available_and_prefixes(name):
    with pytest.raises(ValueError, match="unknown model") as info:
        build_model(name, 10)
    message = str(info.value)
    assert repr(name) in message
    assert all(n in message for n in OURS)
    assert "tv:" in message and "timm:" in message


@pytest.mark.parametrize("num_classes", [0, -3])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        build_model("resnet20", num_classes)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        build_model("tv:resnet18", num_classes)


@pytest.mark.parametrize("num_classes", [True, 2.0, "10"])
def test_num_classes_must_be_int(num_classes):
    with pytest.raises(TypeError, match="num_classes must be an int"):
        build_model("resnet20", num_classes)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: cifar_resnet(21), ValueError, "6n\\+2"),
        (lambda: cifar_resnet(2), ValueError, "6n\\+2"),
        (lambda: cifar_resnet(20, width=0), ValueError, "width"),
        (lambda: pyramidnet(26, 48, True), ValueError, "bottleneck units must be 9n\\+2"),
        (lambda: pyramidnet(29, 240, False), ValueError, "basic units must be 6n\\+2"),
        (lambda: pyramidnet(110, -1.0), ValueError, "alpha"),
        (lambda: pyramidnet(110, 48, "yes"), TypeError, "bottleneck"),
        (lambda: pyramidnet(110.0, 48), TypeError, "depth"),
    ],
)
def test_bad_architecture_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_torchvision_by_prefix_and_bare_name():
    torch.manual_seed(0)
    model = build_model("tv:resnet18", 7).eval()
    with torch.no_grad():
        assert model(_images()).shape == (2, 7)
    with torch.device("meta"):
        bare = build_model("resnet50", 7)
    assert type(bare).__module__.startswith("torchvision") and bare.fc.out_features == 7


def test_unknown_torchvision_name():
    with pytest.raises(ValueError, match="torchvision has no model 'not_a_net'"):
        build_model("tv:not_a_net", 10)


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm not installed")
def test_timm_by_prefix():
    with torch.device("meta"):
        model = build_model("timm:resnet18", 7)
    assert type(model).__module__.startswith("timm") and model.get_classifier().out_features == 7
    with pytest.raises(ValueError, match="timm has no model 'not_a_net'"):
        build_model("timm:not_a_net", 10)


@pytest.mark.parametrize(("package", "name"), [("timm", "timm:resnet18"), ("torchvision", "tv:resnet18")])
def test_missing_library_gives_clear_import_error(monkeypatch, package, name):
    import builtins

    real_import = builtins.__import__

    def hide(module, *args, **kwargs):
        if module == package or module.startswith(package + "."):
            raise ImportError(f"No module named {package!r}")
        return real_import(module, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", hide)
    with pytest.raises(ImportError, match=f"needs {package}, which is not installed"):
        build_model(name, 10)
    if package == "torchvision":  # a bare torchvision name is then simply unknown
        with pytest.raises(ValueError, match="unknown model 'resnet50'"):
            build_model("resnet50", 10)
