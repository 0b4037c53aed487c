"""Which paths of a supernet each training step trains: a pure function of (seed, step), so shared training
is deterministic and resumes at any step with the paths an uninterrupted run would have trained.

A sampler returns a step's paths (searched key -> value), the first one learning from the sharp frames:

- ``uniform`` (Single Path One-Shot, Guo et al. 2020): one path, each searched key's value drawn uniformly.
- ``fair`` (FairNAS's strict fairness, Chu et al. 2021, one path per step): steps come in blocks as long as
  the key with most values; within a block every value of every key is trained equally often (a key with
  fewer values repeats a random draw of them to fill the block), in a seeded random order.
- ``sandwich`` (BigNAS, Yu et al. 2020): the largest path, the smallest and ``random`` uniform ones every
  step, their gradients summed into one update; the others learn from the largest path's output (in-place
  distillation), so the small networks a search extracts are trained for, not left to chance. Largest and
  smallest order the keys that have a size (width, block counts); op choices are drawn uniformly in each.
"""
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from portable_deblur.registry import lookup

PATH_SAMPLING = ("fair", "uniform", "sandwich")


def size(value) -> float:
    """How big a value makes a network (a width, a block count, the sum of a block list); ``nan`` for an op
    choice, which has none."""
    if isinstance(value, bool):
        return float("nan")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return float(sum(value))
    return float("nan")


def path_sampler(choices: Dict[str, Sequence], seed: int, rule: str, random: int = 2) -> Callable[[int], List[Dict]]:
    """``step -> [path, ...]`` (each ``{searched key: value}``) for a supernet holding ``choices`` (key -> its
    values); ``random``: the uniform paths a ``sandwich`` step adds to its largest and smallest."""
    lookup(dict.fromkeys(PATH_SAMPLING), "search.path_sampling", rule)
    keys: Tuple[str, ...] = tuple(sorted(choices))
    values = {k: list(choices[k]) for k in keys}
    block = max(len(v) for v in values.values())

    def uniform(step: int, stream: int = 0) -> Dict:
        rng = np.random.default_rng([seed, 7, int(step)] + ([stream] if stream else []))
        return {k: values[k][int(rng.integers(len(values[k])))] for k in keys}

    def fair(step: int) -> Dict:
        rng = np.random.default_rng([seed, 8, int(step) // block])
        out = {}
        for k in keys:
            n = len(values[k])
            order = list(rng.permutation(n)) + list(rng.choice(n, block - n, replace=False) if block - n <= n
                                                    else rng.integers(n, size=block - n))
            out[k] = values[k][int(rng.permutation(order)[int(step) % block])]
        return out

    sized = {k: sorted(values[k], key=size) for k in keys if not any(np.isnan(size(v)) for v in values[k])}

    def sandwich(step: int) -> List[Dict]:
        ops = uniform(step, 1), uniform(step, 2)
        largest = {**ops[0], **{k: v[-1] for k, v in sized.items()}}
        smallest = {**ops[1], **{k: v[0] for k, v in sized.items()}}
        return [largest, smallest] + [uniform(step, 3 + j) for j in range(random)]

    if rule == "sandwich":
        return sandwich
    return (lambda step: [fair(step)]) if rule == "fair" else (lambda step: [uniform(step)])
