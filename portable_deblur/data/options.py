"""The data stage's choices (registries keyed by the YAML strings) and the check of ``data.*``."""
from portable_deblur.registry import ConfigError, lookup

# srgb: GoPro's standard `blur` set (sub-frames averaged in sRGB values); linear: its `blur_gamma` set (blur.py)
BLUR_SPACES = ("linear", "srgb")


def validate(d) -> None:
    """Check a ``DataConfig``: source, photos, blur parameters (no TensorFlow)."""
    from portable_deblur.data.sources import EMBEDDED_PHOTOS, SOURCES

    lookup(SOURCES, "data.source", d.source)
    lookup(dict.fromkeys(BLUR_SPACES), "data.blur_space", d.blur_space)
    if d.source == "embedded":
        for name in [*d.train_images, *d.val_images]:
            lookup(EMBEDDED_PHOTOS, "embedded photo", name)
        overlap = sorted(set(d.train_images) & set(d.val_images))
        if overlap:  # split by source photo: no scene in both sets
            raise ConfigError(f"data.train_images and data.val_images must not share photos; both have {overlap}")
        if not (d.train_images and d.val_images):
            raise ConfigError("data.train_images and data.val_images must both be non-empty")
    elif not d.root:
        raise ConfigError(f"data.root must be set for data.source={d.source!r} (the dataset folder)")
    if d.rotation < 0 or d.zoom < 0 or d.max_side < 8:
        raise ConfigError(f"data.rotation and data.zoom must be >= 0 and data.max_side >= 8; got "
                          f"{d.rotation}, {d.zoom}, {d.max_side}")
    if len(d.blur_length) != 2 or not 0 < d.blur_length[0] <= d.blur_length[1]:
        raise ConfigError(f"data.blur_length must be [min, max] pixels with 0 < min <= max; got {list(d.blur_length)}")
