"""Regularizers for fine-tuning; for now the starting-point (SP) family of Li et al. (ICML 2018).

``from lautum.regularizers import L2SP`` is the public surface. One concept per
file: :mod:`~lautum.regularizers.starting_point` (the penalties and the sets of
penalised parameters), :mod:`~lautum.regularizers.fisher` (the Fisher diagonal
for L2-SP-Fisher / EWC), :mod:`~lautum.regularizers.quadratic` (closed forms of
the quadratic-approximation theory). Every penalty is an ``nn.Module`` whose
``forward()`` takes no argument and returns a scalar, for use as
``Term("l2sp", L2SP(model, 0.01, 0.01), inputs=lambda ctx: ())``.
"""

from .fisher import FISHER_KINDS, estimate_fisher
from .quadratic import (
    early_stopping_alpha,
    gd_quadratic_iterate,
    gd_spectral_filter,
    l2_quadratic_optimum,
    l2sp_quadratic_optimum,
    l2sp_spectral_filter,
    matching_alpha,
)
from .starting_point import (
    L1SP,
    L2,
    L2SP,
    WHICH,
    GroupLassoSP,
    L2SPFisher,
    PenaltyParts,
    head_parameters,
    penalized_parameters,
)

__all__ = [
    "L2",
    "L2SP",
    "L1SP",
    "GroupLassoSP",
    "L2SPFisher",
    "PenaltyParts",
    "WHICH",
    "penalized_parameters",
    "head_parameters",
    "estimate_fisher",
    "FISHER_KINDS",
    "l2sp_quadratic_optimum",
    "l2_quadratic_optimum",
    "l2sp_spectral_filter",
    "gd_spectral_filter",
    "gd_quadratic_iterate",
    "early_stopping_alpha",
    "matching_alpha",
]
