"""Shared fixtures: tiny configs (width 4, 32 px) so the whole suite stays fast on 2 CPU cores."""
import pytest

from portable_deblur.config import load_config

# Tiny scale for every test: 64-px photos, 32-px crops, a few steps, width 4.
TINY = [
    "data.max_side=64", "data.train_images=[astronaut,coffee]", "data.val_images=[chelsea]",
    "data.blurs_per_image=2", "data.val_blurs_per_image=1",
    "train.steps=3", "train.batch_size=2", "train.crop=32", "train.log_every=1",
    "measure.resolutions=[[32,32]]", "measure.runs=2", "measure.warmup=1",
    "model.width=4",
]


@pytest.fixture
def tiny_args(tmp_path):
    """CLI-style overrides for a tiny run rooted in ``tmp_path``."""
    return TINY + [f"run.root={tmp_path / 'runs'}"]


@pytest.fixture
def tiny_cfg(tiny_args):
    return load_config(["space=upsampling", *tiny_args])


@pytest.fixture(scope="session")
def tiny_dataset():
    from portable_deblur.data import load_dataset

    return load_dataset(load_config(TINY).data)
