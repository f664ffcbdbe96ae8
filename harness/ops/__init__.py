"""What the harness knows about each op: one ``OpSpec`` per ``tf.nn`` op (``spec``), the table of them
(``table``, with the guide to adding an op), the textbook pairings (``pairings``), symbolic attribute values
(``symbolic``) and the reference gradients (``gradient_rules``, ``gradients``).

Everything that differs from one op to another lives in its spec; the rest of the harness reads ops from here.
"""

from harness.ops.spec import KINDS, Arrays, Formulation, NotApplicable, Operand, OpSpec
from harness.ops.table import OPS, RAW_OPS, get, kernel_fits, scaffolded

__all__ = [
    "KINDS",
    "OPS",
    "RAW_OPS",
    "Arrays",
    "Formulation",
    "NotApplicable",
    "OpSpec",
    "Operand",
    "get",
    "kernel_fits",
    "scaffolded",
]
