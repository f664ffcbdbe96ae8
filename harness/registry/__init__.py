"""The YAML case registry: the case model and its parsing (``cases``), sweeps (``sweeps``), loading files
(``loader``), writing cases back as YAML (``serialize``), the known divergences (``divergences``) and new cases with
fitting defaults (``scaffold``). It knows what a case is and what TensorFlow is known to do wrong; it runs nothing.
"""
