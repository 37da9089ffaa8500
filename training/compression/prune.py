"""Pruning a digits model: magnitude pruning (zeros in place) and channel pruning (really smaller layers)."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(layer, "weight") for every conv/linear layer: what both kinds of pruning act on."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def magnitude_prune(model: nn.Module, sparsity: float) -> nn.Module:
    """Zero the `sparsity` fraction of conv/linear weights with the smallest |w|, over the whole model."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    model = copy.deepcopy(model).cpu().eval()
    params = prunable(model)
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(sparsity))
    for m, name in params:
        prune.remove(m, name)          # make it permanent: weight_orig * mask -> weight
    return model


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of zeros among the conv/linear weights."""
    ws = [m.weight for m, _ in prunable(model)]
    return sum((w == 0).sum().item() for w in ws) / sum(w.numel() for w in ws)


def _keep(weight: torch.Tensor, ratio: float) -> torch.Tensor:
    """Indices of the output channels with the largest L1 norm (Li et al. 2017, 'Pruning Filters for
    Efficient ConvNets'), in their original order."""
    n = weight.shape[0]
    k = max(1, int(round(n * ratio)))
    return weight.detach().abs().flatten(1).sum(1).topk(k).indices.sort().values


def _conv_like(conv: nn.Conv2d, out_idx=None, in_idx=None) -> nn.Conv2d:
    w = conv.weight.detach()
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None:
        w = w[:, in_idx]
    new = nn.Conv2d(w.shape[1], w.shape[0], conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    bias=conv.bias is not None)
    new.weight.data.copy_(w)
    if conv.bias is not None:
        new.bias.data.copy_(conv.bias.detach() if out_idx is None else conv.bias.detach()[out_idx])
    return new


def _bn_like(bn: nn.BatchNorm2d, idx) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), eps=bn.eps, momentum=bn.momentum)
    for name in ("weight", "bias"):
        getattr(new, name).data.copy_(getattr(bn, name).detach()[idx])
    new.running_mean.copy_(bn.running_mean[idx])
    new.running_var.copy_(bn.running_var[idx])
    new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)   # a fresh module starts in train mode: keep the old one's mode


def _prune_sequential(model: nn.Module, ratio: float) -> None:
    """VGG/AlexNet: every conv in `features` loses channels; its BN, the next conv's inputs and the first
    Linear's input columns (channel-major after flatten) follow."""
    feats = model.features
    orig_channels = [m for m in feats if isinstance(m, nn.Conv2d)][-1].out_channels
    convs = [i for i, m in enumerate(feats) if isinstance(m, nn.Conv2d)]
    prev = None
    for i in convs:
        conv = feats[i]
        idx = _keep(conv.weight, ratio)
        feats[i] = _conv_like(conv, out_idx=idx, in_idx=prev)
        for j in range(i + 1, len(feats)):            # the BN right after it (before the next conv)
            if isinstance(feats[j], nn.Conv2d):
                break
            if isinstance(feats[j], nn.BatchNorm2d):
                feats[j] = _bn_like(feats[j], idx)
        prev = idx
    fc_i, fc = next((i, m) for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear))
    spatial = fc.in_features // orig_channels          # e.g. 3*3 positions per channel after flatten
    cols = (prev[:, None] * spatial + torch.arange(spatial)[None, :]).flatten()
    new = nn.Linear(len(cols), fc.out_features, bias=fc.bias is not None)
    new.weight.data.copy_(fc.weight.detach()[:, cols])
    if fc.bias is not None:
        new.bias.data.copy_(fc.bias.detach())
    model.classifier[fc_i] = new


def _prune_resnet(model: nn.Module, ratio: float) -> None:
    """ResNet: inside each BasicBlock, conv1's outputs (and bn1, conv2's inputs) are pruned; block outputs
    are tied together by the identity shortcuts, so they keep their width."""
    for block in model.modules():
        if hasattr(block, "conv1") and hasattr(block, "conv2") and hasattr(block, "bn1") and block is not model:
            idx = _keep(block.conv1.weight, ratio)
            block.conv1 = _conv_like(block.conv1, out_idx=idx)
            block.bn1 = _bn_like(block.bn1, idx)
            block.conv2 = _conv_like(block.conv2, in_idx=idx)


def channel_prune(model: nn.Module, keep_ratio: float) -> nn.Module:
    """Structured pruning that really removes channels: returns a smaller dense model (fewer params, less
    compute). keep_ratio = fraction of channels kept in each pruned conv."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    model = copy.deepcopy(model).cpu().eval()
    if hasattr(model, "features") and hasattr(model, "classifier"):
        _prune_sequential(model, keep_ratio)
    elif hasattr(model, "layer1"):
        _prune_resnet(model, keep_ratio)
    else:
        raise ValueError(f"channel pruning knows VGG/AlexNet-style (features+classifier) and ResNet models, "
                         f"not {type(model).__name__}")
    return model.eval()
