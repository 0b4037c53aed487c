"""Where a candidate's weights start before its own training steps: its initialiser, its path of a supernet
(the run's own, ``search.weight_sharing=supernet``, or the package's pretrained start, ``train.init=
pretrained``, or any weight table), or a saved model of the same architecture (``train.init=<path>``).

What it inherited is recorded on every row (``inherited_steps``, ``inherited_from``), so rows are compared
at equal training: the same inherited plus own steps."""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from portable_deblur.layout import RunLayout
from portable_deblur.train.options import PRETRAINED


@dataclass(frozen=True)
class Start:
    """A candidate's start: a weight table (``.npz``) or a ``.keras`` model, and the steps behind it."""

    path: Optional[Path] = None
    steps: int = 0  # training steps its weights had before this run's own steps
    source: str = ""  # how a row names it: "pretrained", "supernet", or the path

    @property
    def table(self) -> bool:
        return self.path is not None and self.path.suffix == ".npz"


SCRATCH = Start()


def table_start(table: Path, source: str) -> Start:
    """A weight table with the steps its record says (0 without a record)."""
    from portable_deblur.models.pretrained import read_record

    return Start(Path(table), int(read_record(table).get("steps", 0)), source)


def configured_start(init: Optional[str], candidate_id: str) -> Start:
    """The start ``train.init`` names for ``candidate_id``."""
    from portable_deblur.models.pretrained import shipped

    if init is None:
        return SCRATCH
    if init == PRETRAINED:  # named with its digest: a later package's start is told apart in old rows
        table, record = shipped()
        return Start(table, int(record.get("steps", 0)), f"{PRETRAINED} {record.get('sha256', '')[:12]}".strip())
    if Path(init).expanduser().suffix == ".npz":
        return table_start(Path(init).expanduser(), str(init))
    return Start(init_file(init, candidate_id), 0, str(init))


def start_of(cfg, layout, candidate) -> Start:
    """Where ``candidate`` starts in this run: the run's supernet (``search.weight_sharing=supernet``, trained
    by then), else what ``train.init`` names."""
    if cfg.search.weight_sharing == "supernet":
        return table_start(RunLayout.weight_table(layout.supernet), "supernet")
    return configured_start(cfg.train.init, candidate.id)


def apply_start(model, candidate, start: Start) -> None:
    """Set ``model``'s weights from ``start`` (a mismatched layer is a clear error naming it)."""
    from portable_deblur.models.supernet import inherit, read_table

    if start.path is None:
        return
    table = read_table(start.path) if start.table else saved_table(start.path)
    inherit(model, table, candidate.kwargs, f"train.init={start.source!r} ({start.path})")


def init_file(init: str, candidate_id: str) -> Path:
    """The ``.keras`` file ``train.init`` names: the file itself, ``<folder>/model.keras``, or the candidate's
    folder in a run directory (``<run>/<candidate id>/model.keras``)."""
    from portable_deblur.layout import saved_model
    from portable_deblur.registry import ConfigError

    found = saved_model(init, candidate_id)
    if found is not None:
        return found
    raise ConfigError(f"train.init={init!r} holds no model.keras for candidate {candidate_id!r}; pass a .keras "
                      f"file, a candidate folder, or a run directory with a {candidate_id}/ folder")


def saved_table(path: Path) -> dict:
    """A saved ``.keras`` model's weights as a weight table (layer name -> its weights), so a warm start copies
    them by name exactly as a supernet's path is copied (``models.supernet.inherit``)."""
    from portable_deblur.backend import keras
    from portable_deblur.models.layers import CUSTOM_OBJECTS

    saved = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    return {layer.name: layer.get_weights() for layer in saved.layers if layer.weights}
