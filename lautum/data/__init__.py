"""Image domains for the transfer experiments: registry, readers, fetching, seeded splits.

The data live under a **data root** (``root=`` argument, else ``$LAUTUM_DATA``,
else ``~/.cache/lautum/data``) that may be read-only; derived files go to a
**cache dir** (``$LAUTUM_CACHE``, else ``~/.cache/lautum``). Nothing is ever
downloaded implicitly: missing data raise :class:`DataNotFoundError`, whose
message gives the ``lautum data fetch NAME`` command; :func:`fetch` is that
command's implementation. The full-scale image-folder targets (Caltech-256 and
the like, read file by file through a ``DataLoader``) are in
:mod:`lautum.data.image_folders`.

>>> from lautum.data import DOMAINS
>>> sorted(DOMAINS)
['cifar10', 'cifar100', 'mnist', 'mnist_m', 'notmnist', 'svhn', 'usps']
>>> DOMAINS["mnist_m"].shape, DOMAINS["notmnist"].classes[:3]
((3, 32, 32), ('A', 'B', 'C'))
"""

from lautum.data.domains import DOMAINS, Domain, get_domain
from lautum.data.errors import DataFetchError, DataNotFoundError
from lautum.data.fetch import DomainStatus, data_status, fetch
from lautum.data.image_folders import FullData, FullScaleDataError, load_image_target
from lautum.data.images import LabeledImages
from lautum.data.readers import load_domain
from lautum.data.root import resolve_cache_dir, resolve_data_root
from lautum.data.splits import TransferSplit, make_transfer_split

__all__ = [
    "resolve_data_root",
    "resolve_cache_dir",
    "load_domain",
    "LabeledImages",
    "DataNotFoundError",
    "DataFetchError",
    "fetch",
    "data_status",
    "DomainStatus",
    "make_transfer_split",
    "TransferSplit",
    "DOMAINS",
    "Domain",
    "get_domain",
    "FullData",
    "FullScaleDataError",
    "load_image_target",
]
