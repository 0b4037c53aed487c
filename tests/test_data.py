"""Data stage: the sub-frame shake renderer, the embedded split, streamed crops, GoPro/REDS/paired folders."""
import numpy as np
import pytest
import imageio.v3 as iio

from portable_deblur.data.blur import ShakePath, blur_image, mean_arc, shake_path
from portable_deblur.config import load_config
from portable_deblur.data.sources import Pair, load_dataset
from portable_deblur.data.pipeline import crop_batch
from portable_deblur.registry import ConfigError

from conftest import TINY


def _dots(size=96, step=24):
    image = np.zeros((size, size, 3), np.uint8)
    image[step // 2::step, step // 2::step] = 255
    return image


def _window(image, y, x, r=10):
    return image[y - r:y + r + 1, x - r:x + r + 1].astype(np.float64)


def test_zero_length_path_returns_the_input():
    rng = np.random.default_rng(0)
    sharp = np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    path = shake_path(rng, 0.0, sharp.shape[:2])
    assert len(path.angle) >= 7 and np.allclose(path.shift, 0) and np.allclose(path.scale, 1)
    for space in ("srgb", "linear"):
        assert np.array_equal(blur_image(sharp, path, rng, noise_sigma=0.0, space=space), sharp)


def test_path_is_deterministic_has_its_length_and_an_identity_middle():
    a = shake_path(np.random.default_rng(3), 20.0, (300, 400))
    b = shake_path(np.random.default_rng(3), 20.0, (300, 400))
    assert np.array_equal(a.shift, b.shift) and np.array_equal(a.angle, b.angle)
    assert mean_arc(a, (300, 400)) == pytest.approx(20.0, rel=0.02)
    mid = len(a.angle) // 2
    assert np.allclose(a.shift[mid], 0) and a.angle[mid] == 0 and a.scale[mid] == 1
    assert len(shake_path(np.random.default_rng(3), 30.0, (300, 400)).angle) > len(a.angle)  # <= 2 px steps


def test_blur_varies_across_the_frame_only_with_rotation_or_zoom():
    sharp = _dots()
    centre, corner = (48 - 12, 48 - 12), (12, 12)  # dots at 12 + 24k
    for rotation, zoom, varies in ((0.0, 0.0, False), (3.0, 0.0, True), (0.0, 3.0, True)):
        path = shake_path(np.random.default_rng(5), 8.0, sharp.shape[:2], rotation=rotation, zoom=zoom)
        if rotation or zoom:  # make sure this draw really rotates / zooms
            assert np.ptp(path.angle) > 0.01 or np.ptp(path.scale) > 0.01
        blurry = blur_image(sharp, path, np.random.default_rng(0), noise_sigma=0.0)
        a, b = _window(blurry, *centre), _window(blurry, *corner)
        assert a.sum() > 0 and b.sum() > 0
        differs = np.abs(a - b).sum() / a.sum()
        assert (differs > 0.3) == varies, (rotation, zoom, differs)


def test_srgb_averaging_keeps_brightness_and_linear_averaging_brightens_edges():
    sharp = np.zeros((64, 64, 3), np.uint8)
    sharp[:, 32:] = 255
    path = ShakePath(np.stack([np.linspace(-4, 4, 9), np.zeros(9)], 1), np.zeros(9), np.ones(9))
    srgb = blur_image(sharp, path, np.random.default_rng(0), noise_sigma=0.0, space="srgb")
    linear = blur_image(sharp, path, np.random.default_rng(0), noise_sigma=0.0, space="linear")
    edge = slice(28, 37)
    # GoPro's standard set: the sRGB values are averaged, so a black/white edge passes through mid-grey 128
    # and the image keeps its mean; averaging light through a camera response makes the edge brighter (REDS).
    assert abs(srgb.astype(float).mean() - sharp.astype(float).mean()) < 0.5
    assert abs(float(srgb[:, 32].mean()) - 128) < 20
    assert linear[:, edge].astype(float).mean() > srgb[:, edge].astype(float).mean() + 20
    steeper = blur_image(sharp, path, np.random.default_rng(0), 0.0, "linear", camera_gamma=4.0)
    assert steeper[:, edge].astype(float).mean() > linear[:, edge].astype(float).mean()


def test_validation_frames_brighten_in_the_linear_pipeline_only(tiny_cfg):
    val = load_dataset(tiny_cfg.data).val
    shift = {space: np.mean([p.blurry.mean() - p.sharp.mean() for p in val if p.pipeline == space]) / 255
             for space in ("srgb", "linear")}
    assert abs(shift["srgb"]) < 0.002 and shift["linear"] > 0.004, shift


def test_dead_leaves_are_deterministic_per_seed_and_fill_the_frame():
    from portable_deblur.data.content import dead_leaves

    grey = np.array([[200, 200, 200]], np.uint8)  # textures stay within +-90 of it: a 0 would be a hole
    a, b = dead_leaves((0, 1), (48, 64), grey), dead_leaves((0, 1), (48, 64), grey)
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert a.min() > 100
    assert not np.array_equal(a, dead_leaves((0, 2), (48, 64), grey))
    colours = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    mixed = dead_leaves((0, 3), (96, 96), colours).reshape(-1, 3).astype(int)
    assert np.ptp(mixed[:, 0] - mixed[:, 2]) > 60  # leaves of both colours (pulled towards one tint)
    # Depth of field: the same leaves never sharper and some clearly softer as the defocus grows.
    def edges(image):
        return np.abs(np.diff(image.astype(float), axis=1)).mean()
    soft = [dead_leaves((0, k), (96, 96), colours, defocus=d) for k in range(4) for d in (0.0, 3.0, 12.0)]
    assert all(edges(soft[i]) >= edges(soft[i + 1]) >= edges(soft[i + 2]) for i in range(0, 12, 3))
    assert any(edges(soft[i + 2]) < 0.8 * edges(soft[i]) for i in range(0, 12, 3))
    data = [a for a in TINY if a.startswith("data.")] + ["data.leaves_share=1", "data.leaves_size=256"]
    frames = [load_dataset(load_config([*data, f"data.leaves_defocus={d}"]).data).train.frame(
        np.random.default_rng(0), 0, "srgb")[0] for d in (0, 12)]  # the key reaches the training frames
    assert edges(frames[1]) < edges(frames[0])
    with pytest.raises(ConfigError, match=r"data.leaves_defocus must be >= 0.*got -1"):
        load_config(["data.leaves_defocus=-1"])


def test_embedded_validation_is_held_out_whole_photos_in_both_pipelines(tiny_cfg):
    from portable_deblur.data.content import photo

    ds = load_dataset(tiny_cfg.data)
    assert [p.name for p in ds.val] == ["chelsea_srgb_0", "chelsea_linear_0"]
    assert all(np.array_equal(p.sharp, photo("chelsea", 64)) for p in ds.val)
    assert all(p.ranked for p in ds.val)  # mixed training ranks by both pipelines
    assert set(ds.train.photos) == {"astronaut", "coffee"} and not set(ds.train.photos) & {"chelsea"}
    srgb_cfg = load_config(["data.blur_space=srgb", "data.max_side=64", "data.val_images=[chelsea]",
                            "data.train_images=[astronaut]"]).data
    srgb = load_dataset(srgb_cfg)
    assert [p.ranked for p in srgb.val] == [True, False] * srgb_cfg.val_blurs_per_image
    same = load_dataset(tiny_cfg.data)
    assert all(np.array_equal(x.blurry, y.blurry) for x, y in zip(ds.val, same.val))
    reseeded = load_dataset(load_config(["data.seed=7", *[a for a in TINY if a.startswith("data.")]]).data)
    assert all(np.array_equal(x.blurry, y.blurry) for x, y in zip(ds.val, reseeded.val))  # a fixed benchmark
    default = load_config([]).data
    assert not set(default.train_images) & set(default.val_images)


def test_fresh_crops_are_a_pure_function_of_seed_and_step(tiny_cfg):
    train = load_dataset(tiny_cfg.data).train
    b, s = crop_batch(train, 7, 6, 32, seed=0)
    assert b.shape == s.shape == (6, 32, 32, 3) and b.dtype == np.float32 and 0 <= b.min() and b.max() <= 1
    again = crop_batch(load_dataset(tiny_cfg.data).train, 7, 6, 32, seed=0)
    assert np.array_equal(b, again[0]) and np.array_equal(s, again[1])
    assert not np.array_equal(b, crop_batch(train, 8, 6, 32, seed=0)[0])
    assert not np.array_equal(b, crop_batch(train, 7, 6, 32, seed=1)[0])
    other = load_dataset(load_config(["data.seed=1", *[a for a in TINY if a.startswith("data.")]]).data).train
    assert not np.array_equal(b, crop_batch(other, 7, 6, 32, seed=0)[0])
    assert np.abs(b - s).mean() > 0.005  # blurred, not copies
    fresh = load_dataset(load_config(["data.leaves_share=1", "data.render_reuse=1",
                                      *[a for a in TINY if a.startswith("data.")]]).data)
    many = np.concatenate([crop_batch(fresh.train, i, 8, 32)[1] for i in range(10)])
    assert len({x.tobytes() for x in many}) == len(many)  # render_reuse=1: no crop repeats
    ring = [set(train.ring(i, 8)) for i in range(400)]  # the default ring: each rendered crop ~8 uses
    assert all(len(r) == 8 for r in ring) and len(set().union(*ring)) == pytest.approx(400 + 24, abs=2)
    assert not ring[0] & ring[200]  # old crops leave the ring: content keeps coming


def test_the_tensorflow_renderer_makes_the_crops_the_numpy_renderer_makes(tiny_cfg):
    """``data.renderer=tensorflow`` (what ``auto`` picks where TensorFlow sees a GPU; here on the CPU): the same
    sub-frame sums within float rounding, the same uint8 crops but for a rare rounding tie."""
    import dataclasses

    from portable_deblur.data.blur import render_subframes, to_signal
    from portable_deblur.data.content import photo

    frame = to_signal(photo("coffee", 128), "linear", 3.0)
    for length in (3.0, 40.0):
        path = shake_path(np.random.default_rng(int(length)), length, frame.shape[:2], rotation=0.5, zoom=0.1)
        for window in ((0, 0, 48, 64), (70, 90, 33, 17)):  # borders reflect; any window
            ours = render_subframes(frame, path, window)
            np.testing.assert_allclose(render_subframes(frame, path, window, "tensorflow"), ours, atol=2e-6)
    train = load_dataset(tiny_cfg.data).train
    assert train.renderer == "numpy"  # auto without a GPU
    on_tf = dataclasses.replace(train, renderer="tensorflow")
    b, s = crop_batch(train, 3, 4, 32, seed=0)
    b_tf, s_tf = crop_batch(on_tf, 3, 4, 32, seed=0)
    assert np.array_equal(s, s_tf) and np.abs(b - b_tf).max() <= 1 / 255 + 1e-6 and np.mean(b != b_tf) < 1e-3
    with pytest.raises(ConfigError, match=r"data.renderer must be one of \['auto', 'numpy', 'tensorflow'\]; got 'gpu'"):
        load_config(["data.renderer=gpu"])


def test_colour_shuffle_permutes_each_uses_channels_and_nothing_else():
    data = [a for a in TINY if a.startswith("data.")] + ["data.leaves_share=0"]
    plain = load_dataset(load_config(data).data).train
    shuffled = load_dataset(load_config([*data, "data.colour_shuffle=true"]).data).train
    b, s = crop_batch(plain, 3, 8, 32, seed=0)
    bs, ss = crop_batch(shuffled, 3, 8, 32, seed=0)
    perms = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    used = [next((p for p in perms if np.array_equal(bs[i], b[i][..., p]) and np.array_equal(ss[i], s[i][..., p])), None)
            for i in range(8)]  # the same pairs in the same flips, each use in one channel order
    assert None not in used and len(set(used)) > 1


def test_crop_batch_keeps_pairs_aligned_under_flips_and_rotations():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)
    blurry = 255 - sharp  # any deterministic per-pixel map: alignment means it still holds after augmentation
    pairs = [Pair("x", blurry, sharp), Pair("y", blurry[::-1], sharp[::-1])]
    b, s = crop_batch(pairs, 0, 16, 32, crops_per_pair=4)
    assert b.shape == s.shape == (16, 32, 32, 3) and b.dtype == np.float32
    assert np.allclose(b, 1.0 - s)
    assert len({tuple(x[0, 0]) for x in s}) > 1  # crops differ
    again, _ = crop_batch(pairs, 0, 16, 32, crops_per_pair=4)
    other, _ = crop_batch(pairs, 1, 16, 32, crops_per_pair=4)
    assert np.array_equal(b, again) and not np.array_equal(b, other)  # a pure function of the batch index


def test_every_pair_is_read_once_per_epoch():
    from portable_deblur.data.pipeline import _pair_indices

    seen = _pair_indices(7, seed=0, first=0, count=21)
    assert all(sorted(seen[e * 7:(e + 1) * 7]) == list(range(7)) for e in range(3))
    assert not np.array_equal(seen[:7], seen[7:14])  # reshuffled each epoch
    assert np.array_equal(_pair_indices(7, 0, 5, 9), seen[5:14])


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


def _paired_tree(root, n=3, shape=(40, 48, 3)):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(n):
            image = rng.integers(0, 256, shape, dtype=np.uint8)
            for side in ("blurry", "sharp"):
                path = root / split / side / "clip" / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                iio.imwrite(path, image)
    return root


def test_paired_layout_lists_without_decoding(tmp_path):
    ds = load_dataset(_folder_cfg("paired", _paired_tree(tmp_path)))
    assert [p.name for p in ds.train] == ["clip_000", "clip_001", "clip_002"] and len(ds.val) == 3
    assert ds.train[0].shape == (40, 48) and ds.train[0].blurry.shape == (40, 48, 3)
    assert np.array_equal(ds.train[1].blurry, ds.train[1].sharp)


def test_paired_errors_name_the_file(tmp_path):
    root = _paired_tree(tmp_path)
    (root / "train" / "sharp" / "clip" / "001.png").unlink()
    with pytest.raises(ConfigError, match="blurry/clip/001.png has no sharp twin; expected .*sharp/clip/001.png"):
        load_dataset(_folder_cfg("paired", root))
    _png(root / "train" / "sharp" / "clip" / "001.png", shape=(8, 8, 3))
    with pytest.raises(ConfigError, match=r"size mismatch: .*blurry/clip/001.png is \(40, 48\) but"):
        load_dataset(_folder_cfg("paired", root))
    (root / "train" / "sharp" / "clip" / "001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ConfigError, match="cannot read image .*sharp/clip/001.png"):
        load_dataset(_folder_cfg("paired", root))
    with pytest.raises(ConfigError, match="no paired images under .*empty/train/blurry"):
        (tmp_path / "empty").mkdir()
        load_dataset(_folder_cfg("paired", tmp_path / "empty"))


def test_the_pipeline_streams_instead_of_materialising_the_dataset(tmp_path, monkeypatch):
    """Memory is bounded by the prefetch queue: taking 3 batches from 200 pairs decodes only what those
    batches (plus a small read-ahead) need, not the dataset."""
    import portable_deblur.data.sources as data
    from portable_deblur.data.pipeline import batches

    ds = load_dataset(_folder_cfg("paired", _paired_tree(tmp_path, n=200, shape=(36, 36, 3))))
    reads = []
    real = data.read_image
    monkeypatch.setattr(data, "read_image", lambda path, shape: reads.append(path) or real(path, shape))
    stream = batches(ds.train, batch_size=4, crop=32, crops_per_pair=2, start=0, count=10_000)
    taken = [b for b, _ in stream.take(3)]
    assert len(taken) == 3 and taken[0].shape == (4, 32, 32, 3)
    assert 12 <= len(reads) <= 2 * 2 * 40  # 2 files x 2 pairs per batch; read-ahead stays small
    assert len(set(reads)) < 200


def test_a_file_that_breaks_during_training_fails_with_its_name(tmp_path, tiny_cfg):
    import dataclasses

    from portable_deblur.data.sources import UnreadableImage
    from portable_deblur.train.fit import fit
    from portable_deblur.models.unet import build_unet

    ds = load_dataset(_folder_cfg("paired", _paired_tree(tmp_path, n=2)))
    broken = ds.train[1].blurry_path
    broken.write_bytes(broken.read_bytes()[:60])  # the header still reads; the pixels do not
    model = build_unet(width=4, enc_blocks=[1], dec_blocks=[1], middle_blocks=1)
    with pytest.raises(UnreadableImage, match=f"cannot read image {broken}"):
        fit(model, ds.train, dataclasses.replace(tiny_cfg.train, steps=4, batch_size=2))
