"""Convolution arithmetic in NumPy, written from the definitions: no TensorFlow, no registry, no I/O.

The window and padding arithmetic (``padding``), layouts and their conversions (``layouts``), dtypes and the
reference's accumulator (``dtypes``), the reference kernels (``reference``), the seed documents' textbook
formulations (``textbook``) and the tolerance bound (``tolerance``). Everything else builds on this package; it
imports nothing else from the harness.
"""
