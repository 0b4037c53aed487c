"""Registry lookup shared by every kind of choice (architectures, upsamplers, activations, losses, ...).

Each stage keeps one explicit dict keyed by the string the YAML uses; ``lookup`` turns a bad key into an
error that names the argument, the value received and the sorted valid choices.
"""
from typing import Any, Mapping


class ConfigError(ValueError):
    """A user-supplied value (YAML, CLI override, dataset layout) is invalid; the message says how."""


def lookup(table: Mapping[str, Any], kind: str, name: Any) -> Any:
    """Return ``table[name]`` or raise ConfigError listing the valid names for ``kind``."""
    if isinstance(name, str) and name in table:
        return table[name]
    raise ConfigError(f"{kind} must be one of {sorted(table)}; got {name!r}")
