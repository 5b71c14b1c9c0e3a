"""What the book shows of each experiment: its claims, tables and verdicts, built from run records.

One module per experiment, on top of :mod:`lautum.analysis` (the one analysis
layer). Nothing here runs or changes a run, so editing a report never makes a
record stale (see :func:`lautum.source.code_hash`).
"""
