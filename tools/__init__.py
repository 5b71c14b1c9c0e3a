"""Book tooling: offline MathJax, the rendered-book browser check and the student edition.

Not part of the ``lautum`` package: these modules build and check the book, and run from
the repository root (``python -m tools.<module>``).
"""
