"""What to make of a trained candidate: ``plan(optimize config)`` lists its artifacts as ``Variant`` records.

Pure (no TensorFlow): the trial walks the list in order. Float variants first (the trained model, then one
pruned model per ``prune`` target and one sparse model per ``sparsity`` pattern), then for the trained model
and each float variant ``combine`` names: every ``ptq`` mode, then QAT when ``qat_steps > 0`` (and, with
``ptq`` ``mixed``, QAT of the mixed plan).
"""
from typing import List

from portable_deblur.records import Variant

TRAINED = Variant()  # the trained float model, converted unquantized


def float_bases(o) -> List[Variant]:
    """The pruned and sparse float models ``o`` (an ``OptimizeConfig``) asks for, in order."""
    return [Variant(("prune", p)) for p in o.prune] + [Variant(("sparsity", s)) for s in o.sparsity]


def plan(o) -> List[Variant]:
    """Every artifact of one trained candidate, in the order they are made (``TRAINED`` first)."""
    floats = float_bases(o)
    combined = [f for f in floats if o.combine is None or f.id in o.combine]
    out = [TRAINED, *floats]
    for base in [TRAINED, *combined]:
        out += [Variant(base.base, "ptq", mode) for mode in o.ptq]
        if o.qat_steps > 0:
            out.append(Variant(base.base, "qat", "int8"))
            if "mixed" in o.ptq:  # QAT of the same plan: only the layers outside its float islands fake-quantized
                out.append(Variant(base.base, "qat", "mixed"))
    return out
