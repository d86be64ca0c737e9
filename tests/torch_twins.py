"""Helpers shared by the tests that compare a dlcourse layer with its torch.nn twin."""

import torch


def randomize(module, seed, scale=0.5):
    """Random non-zero weights and biases instead of PyTorch's init (some bugs only show with non-zero biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
            assert (p != 0).all()
    return module
