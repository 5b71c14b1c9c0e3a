"""lautum: information-theoretic transfer learning, the module behind the lautum book.

The submodules are imported on demand (``lautum.info``, ``lautum.data``,
``lautum.train``, ...) so that ``import lautum`` stays cheap. Importing the package
pins torch's CPU kernels to AVX2 unless ``LAUTUM_KERNELS=native`` (see
:mod:`lautum.kernels`), so that run records reproduce bit for bit on any x86 CPU.
"""

from lautum import kernels as _kernels

__version__ = "0.1.0"

_kernels.apply()
