"""Shared fixtures: tiny configs (width 4, 32 px) so the whole suite stays fast on 2 CPU cores."""
import os

import pytest

from portable_deblur.config import load_config
from portable_deblur.config.smoke import SMOKE

# Tiny scale for every test (the package's smoke scale, also every benchmark's --tiny mode).
TINY = list(SMOKE)


@pytest.fixture(scope="session")
def tiny_overrides():
    """The tiny-scale overrides without a run root (for module-scoped runs that pick their own)."""
    return list(TINY)


@pytest.fixture
def tiny_args(tmp_path):
    """CLI-style overrides for a tiny run rooted in ``tmp_path``."""
    return TINY + [f"run.root={tmp_path / 'runs'}"]


@pytest.fixture
def tiny_cfg(tiny_args):
    return load_config(["space=upsampling", *tiny_args])


@pytest.fixture(scope="session")
def tiny_dataset():
    from portable_deblur.data.sources import load_dataset

    return load_dataset(load_config(TINY).data)


def _check_builder(model, size: int = 32, min_psnr=None) -> dict:
    """The shared builder check, for U-Net and NAFNet alike: forward shape, no NaN, unique layer names, config
    round-trip, float TFLite equal to Keras (within 1e-5, or ``min_psnr`` dB of the Keras output's peak when
    the weights are large); returns the flatbuffer's op counts."""
    import numpy as np

    from portable_deblur.backend import keras
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.flatbuffer import op_counts
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.models.layers import CUSTOM_OBJECTS

    x = np.random.default_rng(0).random((1, size, size, 3), np.float32)
    y = model(x, training=False).numpy()
    assert y.shape == x.shape and np.isfinite(y).all()
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    clone = keras.Model.from_config(model.get_config(), custom_objects=CUSTOM_OBJECTS)
    assert [layer.name for layer in clone.layers] == names
    flat = to_tflite(model, (size, size))
    out = predictor(flat)(x)
    if min_psnr is None:
        np.testing.assert_allclose(out, y, atol=1e-5)
    else:
        rmse = max(float(np.sqrt(np.mean((y - out) ** 2))), 1e-12)
        assert 20 * np.log10(np.abs(y).max() / rmse) > min_psnr
    return op_counts(flat)


@pytest.fixture(scope="session")
def check_builder():
    return _check_builder


@pytest.fixture
def postgres():
    """The PostgreSQL URL for the multi-worker tests (``bash .ci/postgres.sh`` prints one); skipped without
    one, failed when PORTABLE_DEBLUR_REQUIRE_POSTGRES says CI must have it."""
    url = os.environ.get("PORTABLE_DEBLUR_TEST_POSTGRES")
    if not url:
        if os.environ.get("PORTABLE_DEBLUR_REQUIRE_POSTGRES"):
            pytest.fail("PORTABLE_DEBLUR_REQUIRE_POSTGRES is set but PORTABLE_DEBLUR_TEST_POSTGRES is not")
        pytest.skip("set PORTABLE_DEBLUR_TEST_POSTGRES (bash .ci/postgres.sh prints it) to run this test")
    return url
