"""The starting-point penalty of a method name (``"l2sp"``, ``"gl-sp"``, ...), as the L2-SP experiments name them.

One factory shared by the scaled-down and the full-scale L2-SP paths, so that a
method name means the same penalty in both. A ``-freeze`` suffix (``"l2sp-freeze"``)
names the same penalty; the freezing itself is
:func:`lautum.models.freeze_first_blocks`.

>>> from lautum.models import small_cnn
>>> net = small_cnn(10, width=4, feature_dim=8)
>>> type(build_regularizer("l2sp-freeze", net, alpha=0.1, beta=0.01)).__name__
'L2SP'
"""

from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn

from .starting_point import L1SP, L2, L2SP, GroupLassoSP, L2SPFisher

__all__ = ["PENALTIES", "base_method", "build_regularizer"]

#: method name -> penalty class (L2-SP-Fisher also needs the Fisher diagonal)
PENALTIES = {"l2": L2, "l2sp": L2SP, "l1sp": L1SP, "gl-sp": GroupLassoSP, "l2sp-fisher": L2SPFisher}


def base_method(method: str) -> str:
    """``"l2sp-freeze"`` -> ``"l2sp"``."""
    return method.removesuffix("-freeze")


def build_regularizer(method: str, model: nn.Module, alpha: float, beta: float, which: str = "kernels",
                      fisher: Mapping[str, Tensor] | None = None) -> nn.Module:
    """The penalty module of ``method``; build it after the new head is attached and before training.

    The reference weights :math:`w^0` are cloned at construction.
    """
    base = base_method(method)
    if base not in PENALTIES:
        raise ValueError(f"unknown method {method!r}; expected one of {list(PENALTIES)}, optionally with a "
                         "'-freeze' suffix")
    if base == "l2sp-fisher":
        if fisher is None:
            raise ValueError("l2sp-fisher needs the Fisher information (fisher=...)")
        return L2SPFisher(model, fisher, alpha, beta, which=which)
    return PENALTIES[base](model, alpha, beta, which=which)
