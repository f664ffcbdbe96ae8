"""TensorFlow, and what it runs on this machine: the only package that imports TensorFlow.

``wrappers``: thin eager wrappers over ``tf.nn`` and the settings pinned before TensorFlow is imported;
``isolation``: the server process (forked from a zygote) every call goes through, so an abort is one case's
outcome; ``wire``: what crosses to the server (a JSON header and raw array bytes, never pickles); ``versions``: the
server's interpreter, and other TensorFlow versions' cached environments; ``kernel_probe``: asks TensorFlow which
kernel it runs per kernel, dtype and padding; ``machine``: the CPU's deciding features and oneDNN's ISA cap (no
TensorFlow); ``environment``: the run's measured environment.
Importing this package imports no TensorFlow: only calling a wrapper (in the server process) does.
"""
