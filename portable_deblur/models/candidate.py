"""Candidates: the grid of searched builder arguments, each with a readable filesystem-safe id."""
import itertools
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from portable_deblur.registry import ConfigError


@dataclass(frozen=True)
class Candidate:
    """One network to train: architecture, all builder arguments, and which of them were searched."""

    arch: str
    arguments: Tuple[Tuple[str, Any], ...]
    searched: Tuple[str, ...]

    @property
    def kwargs(self) -> Dict[str, Any]:
        return dict(self.arguments)

    @property
    def values(self) -> Dict[str, Any]:
        """The searched values only (what distinguishes this candidate in its space)."""
        return {k: v for k, v in self.arguments if k in self.searched}

    @property
    def id(self) -> str:
        return make_id(self.arch, self.values)


def _token(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ".".join(_token(v) for v in value)
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", str(value).lower() if isinstance(value, bool) else str(value))


def make_id(arch: str, values: Dict[str, Any]) -> str:
    """``unet__activation-relu__upsampler-bilinear``: arch, then searched values in sorted key order."""
    return "__".join([arch] + [f"{k}-{_token(values[k])}" for k in sorted(values)])


def variant_id(values: Dict[str, Any]) -> str:
    """``prune-0.3``, ``sparsity-2-4``: the id part (and folder) of an optimized float variant."""
    return make_id("", values).lstrip("_")


def _plain(value: Any) -> Any:
    return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def candidate_at(arch: str, model: Dict[str, Any], point: Dict[str, Any]) -> Candidate:
    """The candidate at one grid ``point`` (searched key -> value) over the fixed ``model`` arguments;
    a searched ``arch`` key picks the architecture."""
    point = dict(point)
    cand_arch = point.pop("arch", arch)
    args = {**{k: _plain(v) for k, v in model.items()}, **{k: _plain(v) for k, v in point.items()}}
    return Candidate(cand_arch, tuple(sorted(args.items())), tuple(sorted(point)))


def check_grid(grid: Dict[str, List[Any]]) -> None:
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"grid.{key} must be a non-empty list of values; got {values!r}")


def expand(arch: str, model: Dict[str, Any], grid: Dict[str, List[Any]]) -> List[Candidate]:
    """All grid points (in sorted key order, last key fastest) over the fixed ``model`` arguments."""
    check_grid(grid)
    keys = sorted(grid)
    out = [candidate_at(arch, model, dict(zip(keys, combo))) for combo in itertools.product(*(grid[k] for k in keys))]
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"grid produces duplicate candidates: {sorted(i for i in ids if ids.count(i) > 1)}")
    return out
