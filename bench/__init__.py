"""``make bench``: the reference timed against TensorFlow and JAX's lax_reference (not part of the installed
package; run from the repository: ``python -m bench.run``)."""
