"""Checks that hold for every input and prove the harness fails when it should: metamorphic relations
(``relations``), the property-based search (``search``) and the mutation self-test (``mutation``).
"""
