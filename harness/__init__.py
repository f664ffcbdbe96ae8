"""tf-conv-harness: what exactly do TensorFlow's convolutions compute?

Packages, lowest first (each imports only from those before it; ``tests/unit/test_layering.py`` checks it):
``conv`` (the convolution math in NumPy), ``ops`` (what the harness knows about each op) and ``tf`` (TensorFlow and
the machine it runs on), ``registry`` (the YAML cases and known divergences), ``backends`` (other
implementations), ``check`` (one case through every implementation, and its verdict), ``reports``, ``selftest``;
on top, ``exchange`` (the .npz files), ``cli`` (the ``harness`` command) and ``pytest_plugin``.
"""
