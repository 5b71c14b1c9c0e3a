"""lautum: information-theoretic transfer learning, the module behind the lautum book.

The submodules are imported on demand (``lautum.info``, ``lautum.data``,
``lautum.train``, ...) so that ``import lautum`` stays cheap.
"""

__version__ = "0.1.0"
