"""Class activation maps: where in the image a classifier found the evidence for a class.

CAM (Zhou et al. 2016) needs a head that is exactly global average pooling followed by one linear layer. Then the
logit of class k is the spatial mean of ``sum_c w[k, c] * f[c, h, w]`` (plus a bias), and that map before the
mean says which positions raised the logit. Grad-CAM (Selvaraju et al. 2017) weights the channels of any layer by
the spatial mean of the logit's gradient instead, so it needs no particular head; on a GAP + linear head, at the
pooled feature map, the gradient is ``w[k, c] / (h * w)`` everywhere and Grad-CAM is ``ReLU(CAM)`` up to scale.

Both maps are upsampled bilinearly to the input size and then min-max normalised per image to [0, 1] (a constant
map becomes all zeros), which is what the box extraction of the WSOL protocol expects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from cutmix.evaluate.common import eval_mode
from cutmix.models.resnet_cifar import FeatureClassifier


@dataclass(frozen=True)
class CamHead:
    """``run(x) -> (features [N, C, h, w], logits [N, K])`` and the ``linear`` layer that maps pooled features."""

    run: Callable[[Tensor], tuple[Tensor, Tensor]]
    linear: nn.Linear


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """No parameter takes part in autograd (so none gains a ``.grad``), restoring each flag afterwards."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def _is_global_pool(module: object) -> bool:
    return isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1))


def _hooked_head(model: nn.Module, pool: nn.Module, fc: nn.Linear) -> CamHead:
    """The torchvision layout: ``model.forward`` runs ``avgpool`` then ``fc``; hooks catch the feature map."""

    def run(x: Tensor) -> tuple[Tensor, Tensor]:
        seen: dict[str, list[Tensor]] = {"pool": [], "fc": []}
        handles = [
            pool.register_forward_pre_hook(lambda _m, args: seen["pool"].append(args[0])),
            fc.register_forward_pre_hook(lambda _m, args: seen["fc"].append(args[0])),
        ]
        try:
            logits = model(x)
        finally:
            for handle in handles:
                handle.remove()
        name = type(model).__name__
        if len(seen["pool"]) != 1 or len(seen["fc"]) != 1 or seen["pool"][0].ndim != 4:
            raise ValueError(
                f"{name}.forward must call avgpool on a [N, C, h, w] map and fc once each for CAM; use method='gradcam'"
            )
        features, fc_in = seen["pool"][0], seen["fc"][0].float()
        pooled = features.float().mean((2, 3))
        tolerance = 1e-3 * float(pooled.abs().max()) + 1e-6  # loose enough for half-precision features
        if fc_in.shape != pooled.shape or not torch.allclose(fc_in, pooled, rtol=1e-3, atol=tolerance):
            raise ValueError(
                f"{name}.fc does not take the global average of the avgpool input, so CAM does not "
                "apply; use method='gradcam'"
            )
        return features, logits

    return CamHead(run, fc)


def cam_head(model: nn.Module) -> CamHead:
    """How to compute CAMs for ``model``: one of ours (``forward_features`` + ``fc``) or a torchvision-style
    network with ``avgpool`` (a 1x1 ``AdaptiveAvgPool2d``) feeding ``fc`` (a ``Linear``), read through hooks."""
    if isinstance(model, FeatureClassifier):

        def run(x: Tensor) -> tuple[Tensor, Tensor]:
            features = model.forward_features(x)
            return features, model.fc(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))

        return CamHead(run, model.fc)
    pool, fc = getattr(model, "avgpool", None), getattr(model, "fc", None)
    if _is_global_pool(pool) and isinstance(fc, nn.Linear):
        return _hooked_head(model, pool, fc)
    raise ValueError(
        f"{type(model).__name__} has no global-average-pooling + linear head that CAM can read (expected a "
        "FeatureClassifier, or an `avgpool` AdaptiveAvgPool2d(1) followed by an `fc` Linear); use method='gradcam'"
    )


def normalise_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Maps [N, h, w] -> [N, H, W] float32: bilinear upsampling, then min-max per image (constant maps -> 0)."""
    up = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = up.amin(dim=(1, 2), keepdim=True)
    span = up.amax(dim=(1, 2), keepdim=True) - lo
    return torch.where(span > 0, (up - lo) / span.clamp(min=torch.finfo(up.dtype).tiny), torch.zeros_like(up))


def _check_input(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point() or x.shape[0] == 0:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a non-empty normalised float batch [N, C, H, W], got {got}")


def _classes(classes: Tensor | None, logits: Tensor) -> Tensor:
    """``classes`` checked against the logits' batch and class count, or the predicted classes if None."""
    n, k = logits.shape
    if classes is None:
        return logits.argmax(dim=1)
    if not isinstance(classes, Tensor) or classes.is_floating_point() or classes.shape != (n,):
        got = f"{classes.dtype} {tuple(classes.shape)}" if isinstance(classes, Tensor) else type(classes).__name__
        raise ValueError(f"classes must be an integer tensor of shape ({n},) or None, got {got}")
    if int(classes.min()) < 0 or int(classes.max()) >= k:
        raise ValueError(f"classes must lie in [0, {k}), got values in [{int(classes.min())}, {int(classes.max())}]")
    return classes.to(logits.device, torch.long)


def class_activation_maps(model: nn.Module, x: Tensor, classes: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """CAMs [N, H, W] in [0, 1] of ``classes`` [N] (None: the predicted ones) on normalised ``x``, and logits [N, K].

    The linear bias is left out: it shifts a map by a constant, which min-max normalisation removes anyway.
    """
    _check_input(x)
    head = cam_head(model)
    with eval_mode(model), torch.inference_mode():
        features, logits = head.run(x)
        cls = _classes(classes, logits)
        weight = head.linear.weight.float()[cls]  # [N, C]
        raw = torch.einsum("nc,nchw->nhw", weight, features.float())
        return normalise_maps(raw, (x.shape[-2], x.shape[-1])), logits.float()


def default_layer(model: nn.Module) -> nn.Module:
    """Grad-CAM's default layer: the last top-level child of ``model`` that holds a Conv2d (``layer4`` of a
    torchvision ResNet), so the map comes after its block's activations rather than from a bare convolution."""
    found = [child for child in model.children() if any(isinstance(m, nn.Conv2d) for m in child.modules())]
    if not found:
        if isinstance(model, nn.Conv2d):
            return model
        raise ValueError(f"{type(model).__name__} has no child module with a Conv2d; pass layer= explicitly")
    return found[-1]


def _activations(model: nn.Module, x: Tensor, layer: nn.Module | str | None) -> tuple[Tensor, Tensor]:
    """(activations [N, C, h, w] as a leaf that requires grad, logits computed from them)."""
    if layer is None and isinstance(model, FeatureClassifier):
        acts = model.forward_features(x).detach().requires_grad_(True)
        return acts, model.fc(torch.flatten(F.adaptive_avg_pool2d(acts, 1), 1))
    module = default_layer(model) if layer is None else layer
    if isinstance(module, str):
        module = model.get_submodule(module)
    caught: list[Tensor] = []

    def hook(_m: nn.Module, _args: object, out: object) -> Tensor:
        if not isinstance(out, Tensor) or out.ndim != 4:
            raise ValueError(f"Grad-CAM layer {type(_m).__name__} must output a [N, C, h, w] tensor")
        caught.append(out.detach().requires_grad_(True))
        return caught[-1].clone()  # downstream in-place ops (ReLU(inplace=True)) must not modify the leaf

    handle = module.register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    if len(caught) != 1:
        raise ValueError(
            f"Grad-CAM layer {type(module).__name__} ran {len(caught)} times in one forward; "
            "pick a layer that runs exactly once"
        )
    return caught[0], logits


def grad_cam(
    model: nn.Module, x: Tensor, classes: Tensor | None = None, layer: nn.Module | str | None = None
) -> tuple[Tensor, Tensor]:
    """Grad-CAM maps [N, H, W] in [0, 1] of ``classes`` (None: predicted) at ``layer``, and logits [N, K].

    ``layer`` is a module of ``model``, its dotted name, or None: ``forward_features`` for our models, else
    :func:`default_layer`. Gradients are taken w.r.t. the layer's output only; parameters are frozen meanwhile, so
    none is left with a ``.grad``. One backward serves the whole batch: in eval mode samples do not interact, so
    the gradient of the summed class scores is each sample's own.
    """
    _check_input(x)
    with eval_mode(model), torch.inference_mode(False), torch.enable_grad(), _frozen(model):
        x = x.clone() if x.is_inference() else x.detach()
        acts, logits = _activations(model, x, layer)
        cls = _classes(classes, logits.detach())
        score = logits.gather(1, cls[:, None]).sum()
        (grad,) = torch.autograd.grad(score, acts)
        weights = grad.float().mean(dim=(2, 3), keepdim=True)
        raw = torch.relu((weights * acts.detach().float()).sum(dim=1))
    return normalise_maps(raw, (x.shape[-2], x.shape[-1])), logits.detach().float()


def activation_maps(
    model: nn.Module,
    x: Tensor,
    classes: Tensor | None = None,
    method: str = "cam",
    layer: nn.Module | str | None = None,
) -> tuple[Tensor, Tensor]:
    """``method="cam"`` (:func:`class_activation_maps`) or ``"gradcam"`` (:func:`grad_cam` at ``layer``)."""
    if method == "cam":
        if layer is not None:
            raise ValueError("layer= applies to method='gradcam' only; CAM always reads the pooled feature map")
        return class_activation_maps(model, x, classes)
    if method == "gradcam":
        return grad_cam(model, x, classes, layer)
    raise ValueError(f"method must be 'cam' or 'gradcam', got {method!r}")
