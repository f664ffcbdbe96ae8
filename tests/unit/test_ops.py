"""Every op spec is complete: the generic tests that PyTorch's OpInfo derives from ``op_db``, over ``ops.OPS``.

A new op that misses a piece (a reference, a wrapper, cases, a relation name that does not exist...) fails here
with the op and the piece named, before anything else runs it.
"""

import inspect

import numpy as np
import pytest

from harness import ops
from harness.conv import layouts, reference
from harness.conv.padding import ArgForms
from harness.registry import scaffold
from harness.registry.cases import operand_arrays, parse_case
from harness.selftest import relations
from harness.tf import kernel_probe, wrappers

SPECS = list(ops.OPS.values())
ids = [s.name for s in SPECS]


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_reference_and_wrapper_have_the_tf_nn_signature(spec):
    names = [o.name for o in spec.operands] + list(spec.attrs)
    for where, fn in (("harness.conv.reference", spec.reference), ("harness.tf.wrappers", getattr(wrappers, spec.name))):
        params = list(inspect.signature(fn).parameters)
        assert params[:len(names)] == names, f"{where}.{spec.name}: parameters {params}, the spec says {names}"
        required = [p.name for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty]
        assert set(required) <= {o.name for o in spec.operands} | set(spec.required), (where, required)
    assert spec.reference is getattr(reference, spec.name)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_layouts_and_forms_are_consistent(spec):
    assert spec.kind in ops.KINDS
    assert isinstance(spec.forms, ArgForms)
    for fmt in spec.formats:
        assert len(fmt) == spec.rank and set(fmt) == set(spec.formats[0]), fmt
        assert {"N", "C"} <= set(fmt) and set(layouts.spatial(fmt)) <= set(layouts.SPATIAL_LETTERS), fmt
    for o in spec.operands:
        assert o.kind in ("data", "filter"), o
        if o.kind == "filter":
            assert len(o.layout) == spec.rank, o
            assert set(layouts.spatial(spec.formats[0])) <= set(o.layout), o
    assert set(spec.required) <= set(spec.attrs)
    if spec.forms.stride_arg:
        assert spec.forms.stride_arg in spec.attrs
    assert spec.forms.dilation_arg in spec.attrs
    assert set(spec.defaults) <= set(spec.attrs)
    assert (len(spec.formats) > 1) == ("data_format" in spec.attrs)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_the_scaffold_default_case_runs_through_the_reference(spec):
    case = parse_case("<scaffold>", scaffold.new_case(spec.name), 0)
    arrays = operand_arrays(case, "float64")
    out = spec.call(spec.reference, arrays, spec.resolved(arrays, case.attrs))
    assert np.isfinite(out).all() and out.size > 0


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_tensorflow_kernels_are_probed(spec):
    assert spec.tf_kernels and set(spec.tf_kernels) <= set(kernel_probe.KERNELS), spec.tf_kernels
    assert set(spec.tf_gradient_kernels) <= set(kernel_probe.KERNELS), spec.tf_gradient_kernels


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_relations_named_by_the_spec_exist(spec):
    known = {r.name for r in relations.RELATIONS}
    assert set(spec.relations) <= known, set(spec.relations) - known


def test_every_relation_holds_for_some_op():
    assert all(r.ops for r in relations.RELATIONS), [r.name for r in relations.RELATIONS if not r.ops]


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_the_gradient_rule_has_one_gradient_per_operand(spec):
    if spec.gradient is None:
        pytest.skip(f"{spec.name} has no reference gradient rule")
    case = parse_case("<scaffold>", scaffold.new_case(spec.name), 0)
    arrays = operand_arrays(case, "float64")
    attrs = spec.resolved(arrays, case.attrs)
    y = spec.call(spec.reference, arrays, attrs)
    grads = spec.gradient(spec, arrays, attrs, np.ones_like(y))
    assert set(grads) == {o.name for o in spec.operands}
    for name, g in grads.items():
        assert np.shape(g) == np.shape(arrays[name]), name


def test_every_op_has_registry_cases(registry):
    have = {case.op for case in registry}
    assert set(ops.OPS) <= have, set(ops.OPS) - have


def test_get_names_the_known_ops():
    with pytest.raises(ValueError, match="known ops: " + ", ".join(ops.OPS)):
        ops.get("conv3d")
