r"""Mutual-information estimators for training: a variational upper bound (CLUB).

The Gaussian plug-in estimators live in :mod:`lautum.info`
(:func:`~lautum.info.gaussian_mi_from_samples`,
:func:`~lautum.info.gaussian_lautum_from_samples`); this module adds the contrastive
log-ratio upper bound of Cheng et al. (2020), with a Gaussian variational
conditional :math:`q_\theta(y\mid x)`:

.. math::

    I_{\mathrm{CLUB}}(q) = \mathbb E_{P_{XY}}\log q(Y\mid X) - \mathbb E_{P_X\otimes P_Y}\log q(\bar Y\mid \bar X).

With the exact conditional :math:`q = p(y\mid x)`, :math:`\log p(y)` has the same mean
under the joint and the product, so :math:`I_{\mathrm{CLUB}} = I(X;Y) + L(X;Y)`: the
slack of the "upper bound" over the mutual information is exactly the Lautum information.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["gaussian_log_likelihood", "club_upper_bound", "CLUB"]


def _check_pair(y: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> None:
    if y.dim() != 2:
        raise ValueError(f"y must have shape (batch, y_dim); got {tuple(y.shape)}.")
    for name, t in (("mu", mu), ("logvar", logvar)):
        if t.shape != y.shape:
            raise ValueError(
                f"{name} must have the shape of y, {tuple(y.shape)} (one Gaussian per sample); "
                f"got {tuple(t.shape)}."
            )
    if y.shape[0] < 2:
        raise ValueError("CLUB needs at least two samples (the product term pairs them).")


def gaussian_log_likelihood(y: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Per-sample :math:`\log\mathcal N(y_i; \mu_i, \mathrm{diag}\,e^{\ell_i})`, shape (batch,).

    .. math::

        \log q(y_i\mid x_i) = -\frac12\sum_d\Big(\frac{(y_{id}-\mu_{id})^2}{e^{\ell_{id}}}
            + \ell_{id} + \log 2\pi\Big)

    Examples
    --------
    >>> round(gaussian_log_likelihood(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1)).item(), 6)
    -0.918939
    """
    return -0.5 * (((y - mu) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


def club_upper_bound(
    y: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    pairs: str = "all",
    reduction: str = "mean",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""CLUB estimate of :math:`I(X;Y)` from a batch and the Gaussian :math:`q(\cdot\mid x_i)`.

    .. math::

        \hat I_{\mathrm{CLUB}} = \frac1B\sum_i \log q(y_i\mid x_i)
            - \frac1{B^2}\sum_{i,j}\log q(y_j\mid x_i)

    (Cheng et al., 2020, eq. 7; the all-pairs term includes :math:`j=i`, as the
    official code). The normalising constants cancel between the two terms and are
    dropped; the all-pairs term is computed in :math:`O(Bd)` from the batch mean and
    variance of :math:`y`. ``pairs="shuffle"`` pairs each :math:`x_i` with one
    :math:`y_{\pi(i)}` for a random permutation :math:`\pi` (CLUBSample).

    Parameters
    ----------
    y : torch.Tensor, shape (B, d)
    mu, logvar : torch.Tensor, shape (B, d)
        Mean and log-variance of :math:`q(\cdot\mid x_i)`, e.g. from :meth:`CLUB.q_params`.
    pairs : {"all", "shuffle"}, default "all"
    reduction : {"mean", "none"}, default "mean"
        ``"none"`` returns the per-sample terms
        :math:`\log q(y_i\mid x_i) - \frac1B\sum_j\log q(y_j\mid x_i)`, whose standard
        deviation over :math:`\sqrt B` is a standard error for the mean.
    generator : torch.Generator, optional
        For ``pairs="shuffle"``.

    Returns
    -------
    torch.Tensor, shape () or (B,)
        In nats; differentiable with respect to all inputs.

    References
    ----------
    Cheng, Hao, Dai, Liu, Gan & Carin, "CLUB: A Contrastive Log-ratio Upper Bound of
    Mutual Information", ICML 2020.

    Examples
    --------
    A perfect predictor with unit variance on :math:`y=\pm1`: positive term 0, the
    all-pairs term :math:`-\tfrac12(\mathrm{var}\,y + 1) = -1`.

    >>> y = torch.tensor([[1.0], [-1.0]])
    >>> club_upper_bound(y, y.clone(), torch.zeros(2, 1)).item()
    1.0
    """
    _check_pair(y, mu, logvar)
    inv = torch.exp(-logvar)
    positive = -0.5 * (((y - mu) ** 2) * inv).sum(-1)
    if pairs == "all":
        ybar = y.mean(0, keepdim=True)
        yvar = ((y - ybar) ** 2).mean(0, keepdim=True)
        negative = -0.5 * ((yvar + (ybar - mu) ** 2) * inv).sum(-1)
    elif pairs == "shuffle":
        perm = torch.randperm(y.shape[0], generator=generator).to(y.device)
        negative = -0.5 * (((y[perm] - mu) ** 2) * inv).sum(-1)
    else:
        raise ValueError(f"pairs must be 'all' or 'shuffle', got {pairs!r}.")
    terms = positive - negative
    if reduction == "none":
        return terms
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    return terms.mean()


class CLUB(nn.Module):
    r"""CLUB with a Gaussian variational conditional :math:`q_\theta(y\mid x)`.

    :math:`q_\theta(y\mid x) = \mathcal N(\mu_\theta(x), \mathrm{diag}\,e^{\ell_\theta(x)})`, with
    :math:`\mu_\theta, \ell_\theta` linear (``hidden=None``, exact for jointly Gaussian
    data) or one-hidden-layer ReLU networks. ``forward(x, y)`` returns the scalar
    :func:`club_upper_bound`; :meth:`learning_loss` is the negative log-likelihood that
    fits :math:`q` (maximum likelihood on joint samples), and :meth:`fit` runs Adam on it.
    In training, alternate: a step of :meth:`learning_loss` for :math:`q`, then use
    ``forward`` as the penalty for the model producing ``x, y``.

    Parameters
    ----------
    x_dim, y_dim : int
    hidden : int, optional
        Hidden width; None for linear heads.
    bounded_logvar : bool, default False
        End the log-variance head in ``tanh`` (variance in :math:`(e^{-1}, e)`), as the
        official code does; too narrow for strongly dependent data.

    Examples
    --------
    >>> club = CLUB(2, 1)
    >>> club(torch.randn(8, 2), torch.randn(8, 1)).shape
    torch.Size([])
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int | None = None, bounded_logvar: bool = False) -> None:
        super().__init__()

        def head(final: nn.Module | None = None) -> nn.Module:
            layers: list[nn.Module] = (
                [nn.Linear(x_dim, y_dim)]
                if hidden is None
                else [nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim)]
            )
            if final is not None:
                layers.append(final)
            return nn.Sequential(*layers)

        self.mu = head()
        self.logvar = head(nn.Tanh() if bounded_logvar else None)

    def q_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of :math:`q(\\cdot\\mid x)`, each of shape (B, y_dim)."""
        return self.mu(x), self.logvar(x)

    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean :math:`\\log q(y_i\\mid x_i)` over the batch (nats)."""
        return gaussian_log_likelihood(y, *self.q_params(x)).mean()

    def learning_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``y`` given ``x`` under :math:`q` (minimise to fit :math:`q`)."""
        return -self.log_likelihood(x, y)

    def forward(self, x: torch.Tensor, y: torch.Tensor, pairs: str = "all") -> torch.Tensor:
        return club_upper_bound(y, *self.q_params(x), pairs=pairs)

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        steps: int = 300,
        lr: float = 0.05,
        batch_size: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[float]:
        """Fit :math:`q` by maximum likelihood with Adam; returns the loss per step.

        ``batch_size=None`` uses the full sample at every step.
        """
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y must pair up: {x.shape[0]} vs {y.shape[0]} samples.")
        self.to(device=x.device, dtype=x.dtype)
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        history = []
        for _ in range(steps):
            if batch_size is None or batch_size >= x.shape[0]:
                xb, yb = x, y
            else:
                idx = torch.randint(0, x.shape[0], (batch_size,), generator=generator).to(x.device)
                xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss = self.learning_loss(xb, yb)
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
        return history
