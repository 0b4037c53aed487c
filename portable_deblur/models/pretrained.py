"""The pretrained start the package ships: the default space's supernet trained long on the embedded data,
as a weight table (``models/supernet.py``) with a record beside it (config, steps, seconds, machine, seed,
per-pipeline validation gain of every path, SHA-256, and the command that reproduces it:
``benchmarks/pretrain.py``). ``train.init=pretrained`` starts each candidate from its path of it."""
import hashlib
import json
from pathlib import Path
from typing import Dict, Tuple

from portable_deblur.registry import ConfigError

FOLDER = Path(__file__).resolve().parent.parent / "pretrained"
NAME = "upsampling"  # the search space whose grid it holds


def table_file(folder: Path = FOLDER, name: str = NAME) -> Path:
    return Path(folder) / f"{name}.npz"


def record_file(table: Path) -> Path:
    """The record beside a weight table: ``<name>.json``."""
    return Path(table).with_suffix(".json")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_record(table: Path) -> Dict:
    """The record of a weight table (``{}`` when it has none); a table whose bytes differ from the SHA-256 its
    record names is a clear error (a damaged or replaced file)."""
    record = record_file(table)
    if not record.is_file():
        return {}
    data = json.loads(record.read_text())
    expected = data.get("sha256")
    if expected and sha256(table) != expected:
        raise ConfigError(f"{table} does not match the SHA-256 its record {record.name} names ({expected[:12]}...): "
                          f"the file is damaged or was replaced; reinstall the package or rerun {data.get('command')!r}")
    return data


def shipped() -> Tuple[Path, Dict]:
    """(the shipped weight table, its record)."""
    table = table_file()
    if not table.is_file():
        raise ConfigError(f"train.init=pretrained: the package's pretrained start {table} is missing (it ships "
                          f"with the source tree; make it with benchmarks/pretrain.py)")
    return table, read_record(table)
