"""Smoke scale: the smallest settings at which the whole pipeline still runs end to end (width-4 networks,
64-px photos, 32-px crops, a few training steps, two timed runs at 32x32, never retried). The test suite runs at this scale,
and so does every benchmark's ``--tiny`` mode, so a change that breaks a benchmark fails a test. Figures at
this scale mean nothing; only that every stage ran."""
import tempfile
from pathlib import Path
from typing import List, Sequence, Tuple

SMOKE = [
    "data.max_side=64", "data.train_images=[astronaut,coffee]", "data.val_images=[chelsea]",
    "data.leaves_size=64", "data.val_blurs_per_image=1",
    "train.steps=3", "train.batch_size=2", "train.crop=32", "train.log_every=1",
    "measure.resolutions=[[32,32]]", "measure.runs=2", "measure.warmup=1", "measure.interleaved_rounds=0",
    "measure.reference_repeats=1", "measure.retries=0",  # a disturbed timing is not retried: its figure means nothing here
    "model.width=4", "search.rungs=[]", "train.init=null",
]


def smoke_overrides(root: Path) -> List[str]:
    """``SMOKE`` with the runs rooted in ``root`` (a benchmark's ``--tiny`` writes nothing into the repo)."""
    return [*SMOKE, f"run.root={root}"]


def tiny_flag(argv: Sequence[str]) -> Tuple[bool, List[str]]:
    """(whether a benchmark was asked for its ``--tiny`` smoke run, the other arguments)."""
    argv = list(argv)
    return "--tiny" in argv, [a for a in argv if a != "--tiny"]


def smoke_root() -> Path:
    """A fresh temporary folder for a smoke run's files."""
    return Path(tempfile.mkdtemp(prefix="portable_deblur_tiny_"))


def smoke_run(overrides: Sequence[str] = (), space: str = "upsampling") -> Path:
    """Run a search of ``space`` at smoke scale in a fresh temporary folder; returns its run directory (for a
    benchmark's ``--tiny`` mode that reads a finished run)."""
    from portable_deblur.search.run import prepare, run_search

    cfg, violations, dataset, study = prepare([f"space={space}", *smoke_overrides(smoke_root()), *overrides])
    run_search(cfg, violations, study, dataset)
    return study.layout.root
