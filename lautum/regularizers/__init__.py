"""Regularizers: each an ``nn.Module`` whose ``forward`` returns a scalar, named as its paper names it.

``from lautum.regularizers import L2SP, LautumRegularizer`` is the public surface.
One concept per file:

- :mod:`~lautum.regularizers.information` — the Lautum and mutual-information
  regularizers of Jakubovitz et al. (channel form at the first layer), and the
  channel probe that measures their channel surrogate on a network
  (:func:`channel_surrogate_terms`, :func:`initial_noise_var`, :func:`channel_layer`);
- :mod:`~lautum.regularizers.alignment` — MK-MMD between source and target features (DAN);
- :mod:`~lautum.regularizers.consistency` — Temporal Ensembling (Laine & Aila);
- :mod:`~lautum.regularizers.starting_point` — the starting-point family of Li et
  al. (L2, L2-SP, L1-SP, GL-SP, L2-SP-Fisher), the sets of penalised parameters and
  the bookkeeping around w⁰ (:func:`snapshot`, :func:`layer_distances`,
  :func:`normalised_fisher`);
- :mod:`~lautum.regularizers.factory` — the starting-point penalty of a method name
  (:func:`build_regularizer`, :func:`base_method`);
- :mod:`~lautum.regularizers.fisher` — the Fisher diagonal for L2-SP-Fisher / EWC;
- :mod:`~lautum.regularizers.quadratic` — closed forms of the quadratic-approximation theory.

They plug into the trainer as terms, e.g.
``Term("l2sp", L2SP(model, 0.01, 0.01), inputs=lambda ctx: ())`` or
``Term("lautum", LautumRegularizer(model.first_layer()), inputs=lambda ctx: (ctx.x_unlabeled,))``.
"""

from .alignment import MKMMD, mkmmd_exponents
from .consistency import TemporalEnsembling, rampup_weight
from .factory import PENALTIES, base_method, build_regularizer
from .fisher import FISHER_KINDS, estimate_fisher
from .information import (
    ChannelTerms,
    LautumRegularizer,
    MutualInformationRegularizer,
    PenultimateInputs,
    channel_layer,
    channel_surrogate_terms,
    initial_noise_var,
)
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
    layer_distances,
    normalised_fisher,
    penalized_parameters,
    snapshot,
)

__all__ = [
    "LautumRegularizer",
    "MutualInformationRegularizer",
    "ChannelTerms",
    "channel_surrogate_terms",
    "initial_noise_var",
    "channel_layer",
    "PenultimateInputs",
    "MKMMD",
    "mkmmd_exponents",
    "TemporalEnsembling",
    "rampup_weight",
    "L2",
    "L2SP",
    "L1SP",
    "GroupLassoSP",
    "L2SPFisher",
    "PenaltyParts",
    "WHICH",
    "penalized_parameters",
    "head_parameters",
    "snapshot",
    "layer_distances",
    "normalised_fisher",
    "PENALTIES",
    "base_method",
    "build_regularizer",
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
