"""Which path of a supernet each training step trains: a pure function of (seed, step), so shared training
is deterministic and resumes at any step with the paths an uninterrupted run would have trained.

- ``uniform`` (Single Path One-Shot, Guo et al. 2020): every step draws each searched key's value uniformly.
- ``fair`` (FairNAS's strict fairness, Chu et al. 2021, one path per step): steps come in blocks as long as
  the key with most values; within a block every value of every key is trained equally often (a key with
  fewer values repeats a random draw of them to fill the block), in a seeded random order.
"""
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

from portable_deblur.registry import lookup

PATH_SAMPLING = ("fair", "uniform")


def path_sampler(choices: Dict[str, Sequence], seed: int, rule: str) -> Callable[[int], Dict]:
    """``step -> {searched key: value}`` for a supernet holding ``choices`` (key -> its values)."""
    lookup(dict.fromkeys(PATH_SAMPLING), "search.path_sampling", rule)
    keys: Tuple[str, ...] = tuple(sorted(choices))
    values = {k: list(choices[k]) for k in keys}
    block = max(len(v) for v in values.values())

    def uniform(step: int) -> Dict:
        rng = np.random.default_rng([seed, 7, int(step)])
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

    return fair if rule == "fair" else uniform
