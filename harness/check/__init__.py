"""Checking one case: preparing it (operands, attributes, the reference, the bound), running the implementations,
deciding its verdict in one place, and naming the convention behind a disagreement (``diagnose``, with the
plausible convention bugs of ``mutants``).
"""
