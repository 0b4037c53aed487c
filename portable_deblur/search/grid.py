"""The searched grid as Optuna sees it: categorical choices per key (sorted), encoded as scalars."""
import itertools
import json
from typing import Any, Dict, List, Optional


def encode(value: Any) -> Any:
    """Optuna categorical choices must be scalars: lists (e.g. ``enc_blocks``) become JSON strings."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


class Grid:
    """``grid`` (searched key -> values): its encoded choices, how to decode them, its size and its points in
    GridSampler's order (product over sorted keys, last key fastest)."""

    def __init__(self, grid: Dict[str, List[Any]]):
        self.choices = {k: [encode(v) for v in grid[k]] for k in sorted(grid)}
        self.decode = {k: dict(zip(self.choices[k], grid[k])) for k in self.choices}
        self.size = 1
        for values in self.choices.values():
            self.size *= len(values)

    def point(self, params: Dict[str, Any]) -> Dict[str, Any]:
        """Decoded values of encoded ``params``."""
        return {k: self.decode[k][params[k]] for k in self.choices}

    def params_at(self, grid_id: int) -> Dict[str, Any]:
        return dict(zip(self.choices, list(itertools.product(*self.choices.values()))[grid_id]))

    def complete(self, params: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        return dict(params) if len(params) == len(self.choices) else None
