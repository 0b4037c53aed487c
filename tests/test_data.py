"""Data stage: synthetic shake blur, the embedded split, augmentation, GoPro/REDS folder layouts."""
import numpy as np
import pytest
import imageio.v3 as iio

from portable_deblur.blur import blur_image, linear_to_srgb, shake_kernel, srgb_to_linear
from portable_deblur.config import load_config
from portable_deblur.data import Pair, load_dataset, sample_batch
from portable_deblur.registry import ConfigError


def test_shake_kernel_is_normalised_deterministic_and_scales_with_length():
    k1 = shake_kernel(np.random.default_rng(3), 10.0)
    k2 = shake_kernel(np.random.default_rng(3), 10.0)
    assert np.allclose(k1.sum(), 1.0) and (k1 >= 0).all() and np.array_equal(k1, k2)
    assert k1.shape[0] % 2 == 1
    assert shake_kernel(np.random.default_rng(3), 20.0).shape[0] > k1.shape[0]


def test_blur_is_in_linear_light_and_lowers_psnr():
    assert np.allclose(linear_to_srgb(srgb_to_linear(np.linspace(0, 1, 11))), np.linspace(0, 1, 11))
    rng = np.random.default_rng(0)
    sharp = np.zeros((40, 40, 3), np.uint8)
    sharp[:, 20:] = 255
    blurry = blur_image(sharp, shake_kernel(rng, 8.0), rng, noise_sigma=0.0)
    # A black/white edge averaged in linear light is brighter than the sRGB mid-value 128 at the edge.
    assert blurry.dtype == np.uint8 and blurry.shape == sharp.shape
    assert blurry[:, 19:21].mean() > 128


def test_embedded_dataset_is_deterministic_and_split_by_photo(tiny_cfg):
    a, b = load_dataset(tiny_cfg.data), load_dataset(tiny_cfg.data)
    assert len(a.train) == 4 and len(a.val) == 1
    assert all(np.array_equal(x.blurry, y.blurry) for x, y in zip(a.train, b.train))
    train_photos = {p.name.rsplit("_", 1)[0] for p in a.train}
    val_photos = {p.name.rsplit("_", 1)[0] for p in a.val}
    assert train_photos == {"astronaut", "coffee"} and val_photos == {"chelsea"}
    other = load_dataset(load_config(["data.seed=1", "data.max_side=64"]).data)
    assert not np.array_equal(other.train[0].blurry, a.train[0].blurry)


def test_sample_batch_keeps_pairs_aligned_under_flips_and_rotations():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)
    blurry = 255 - sharp  # any deterministic per-pixel map: alignment means it still holds after augmentation
    b, s = sample_batch(rng, [Pair("x", blurry, sharp)], 16, 32)
    assert b.shape == s.shape == (16, 32, 32, 3) and b.dtype == np.float32
    assert np.allclose(b, 1.0 - s)
    assert len({tuple(x[0, 0]) for x in s}) > 1  # crops differ


def _png(path, shape=(16, 24, 3), value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.full(shape, value, np.uint8))


def _folder_cfg(source, root, *extra):
    return load_config([f"data.source={source}", f"data.root={root}", *extra]).data


def test_gopro_layout(tmp_path):
    for split in ("train", "test"):
        for seq in ("GOPR0001", "GOPR0002"):
            for i in range(2):
                _png(tmp_path / split / seq / "blur" / f"{i:06d}.png", value=10)
                _png(tmp_path / split / seq / "sharp" / f"{i:06d}.png", value=20)
    ds = load_dataset(_folder_cfg("gopro", tmp_path))
    assert len(ds.train) == 4 and len(ds.val) == 4
    assert ds.train[0].name == "GOPR0001_000000" and ds.train[0].blurry[0, 0, 0] == 10
    assert len(load_dataset(_folder_cfg("gopro", tmp_path, "data.max_train_pairs=1")).train) == 1


def test_reds_layout(tmp_path):
    for split in ("train", "val"):
        for i in range(3):
            _png(tmp_path / f"{split}_blur" / "000" / f"{i:08d}.png")
            _png(tmp_path / f"{split}_sharp" / "000" / f"{i:08d}.png")
    ds = load_dataset(_folder_cfg("reds", tmp_path, "data.frame_stride=2"))
    assert [p.name for p in ds.train] == ["000_00000000", "000_00000002"]


def test_folder_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="data.root .*missing.* is not a directory"):
        load_dataset(_folder_cfg("gopro", tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no GoPro pairs under"):
        load_dataset(_folder_cfg("gopro", tmp_path))
    blur = tmp_path / "train" / "S" / "blur" / "a.png"
    _png(blur)
    with pytest.raises(ConfigError, match=f"{blur} has no sharp twin"):
        load_dataset(_folder_cfg("gopro", tmp_path))
    _png(tmp_path / "train" / "S" / "sharp" / "a.png", shape=(8, 8, 3))
    with pytest.raises(ConfigError, match=f"size mismatch: {blur}"):
        load_dataset(_folder_cfg("gopro", tmp_path))
    _png(tmp_path / "train" / "S" / "sharp" / "b.png", shape=(8, 8, 3))
    with pytest.raises(ConfigError, match="sharp image .*sharp/b.png has no blurry twin"):
        load_dataset(_folder_cfg("gopro", tmp_path))
    (tmp_path / "train" / "S" / "sharp" / "b.png").unlink()
    (tmp_path / "train" / "S" / "sharp" / "a.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="cannot read image .*sharp/a.png"):
        load_dataset(_folder_cfg("gopro", tmp_path))
    with pytest.raises(ConfigError, match="data.root must be set"):
        load_dataset(load_config(["data.source=reds"]).data)
