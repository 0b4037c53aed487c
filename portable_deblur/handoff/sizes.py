"""Bundles at the size the app runs: ``resolution=720x1280[,1080x1920]`` exports the row's network at each
size (padded up to its multiple, as the app must pad), and ``measure`` times each file on this host."""
import re
from pathlib import Path
from typing import List, Tuple

from portable_deblur.registry import ConfigError


def parse_resolutions(text: str) -> List[Tuple[int, int]]:
    """``"720x1280,1080x1920"`` -> [(720, 1280), (1080, 1920)] (height x width)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)x(\d+)", part)
        if match is None or min(map(int, match.groups())) < 1:
            raise ConfigError(f"resolution must be HEIGHTxWIDTH sizes separated by commas (e.g. 720x1280,1080x1920); "
                              f"got {part!r}")
        out.append((int(match.group(1)), int(match.group(2))))
    return list(dict.fromkeys(out))


def export_at(study, row, shape: Tuple[int, int], multiple: int) -> bytes:
    """``row``'s artifact at input ``shape`` (padded up to ``multiple``): the run's own file when it measured
    that size, else its float model (the trained or pruned one) converted again in the row's mode."""
    from portable_deblur.backend import keras
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.export import NEEDS_DATA, representative_inputs, to_tflite
    from portable_deblur.models.layers import CUSTOM_OBJECTS
    from portable_deblur.search.artifact import padded

    size = padded(shape, multiple)
    primary = study.layout / row.artifacts["primary"]
    label, _ = study.layout.artifact_parts(primary)  # fp32, int8, qat_int8
    existing = study.layout.artifact(primary.parent, label, size)
    if existing.is_file():
        return existing.read_bytes()
    if "qat" in row.values:
        raise ConfigError(f"{row.id} is a QAT artifact: its fake-quant model is not kept, so it cannot be exported "
                          f"at {shape[0]}x{shape[1]}; add that size to measure.resolutions of the run")
    saved = study.layout.model(Path(primary.parent))
    if not saved.is_file():
        raise ConfigError(f"{saved} (the model {row.id} was converted from) is not on this machine")
    model = keras.models.load_model(saved, custom_objects=CUSTOM_OBJECTS, compile=False)
    mode = row.values.get("ptq", "fp32")
    rep = None
    if mode in NEEDS_DATA:
        cfg = study.cfg
        rep = representative_inputs(load_dataset(cfg.data).train, size, cfg.optimize.representative_count, cfg.data.seed)
    return to_tflite(model, size, mode, rep)
