"""The data stage's choices (registries keyed by the YAML strings) and the check of ``data.*``."""
from portable_deblur.registry import ConfigError, lookup

# The camera pipeline training pairs are blurred in (blur.py): srgb = GoPro's standard `blur` set, linear =
# light integrated through a camera response (REDS, GoPro's `blur_gamma`), mixed = either, drawn per crop.
BLUR_SPACES = ("linear", "mixed", "srgb")


def validate(d) -> None:
    """Check a ``DataConfig``: source, photos, blur parameters (no TensorFlow)."""
    from portable_deblur.data.content import PHOTOS
    from portable_deblur.data.sources import SOURCES

    lookup(SOURCES, "data.source", d.source)
    lookup(dict.fromkeys(BLUR_SPACES), "data.blur_space", d.blur_space)
    from portable_deblur.data.blur import RENDERERS

    lookup(dict.fromkeys(RENDERERS), "data.renderer", d.renderer)
    if d.source == "embedded":
        for name in [*d.train_images, *d.val_images]:
            lookup(PHOTOS, "embedded photo", name)
        overlap = sorted(set(d.train_images) & set(d.val_images))
        if overlap:  # split by source photo: no scene in both sets
            raise ConfigError(f"data.train_images and data.val_images must not share photos; both have {overlap}")
        if not (d.train_images and d.val_images):
            raise ConfigError("data.train_images and data.val_images must both be non-empty (the training photos "
                              "also give the dead leaves their colours)")
    elif not d.root:
        raise ConfigError(f"data.root must be set for data.source={d.source!r} (the dataset folder)")
    if d.rotation < 0 or d.zoom < 0 or d.max_side < 8:
        raise ConfigError(f"data.rotation and data.zoom must be >= 0 and data.max_side >= 8; got "
                          f"{d.rotation}, {d.zoom}, {d.max_side}")
    if len(d.blur_length) != 2 or not 0 < d.blur_length[0] <= d.blur_length[1]:
        raise ConfigError(f"data.blur_length must be [min, max] pixels with 0 < min <= max; got {list(d.blur_length)}")
    for key in ("leaves_share", "linear_share"):
        if not 0 <= getattr(d, key) <= 1:
            raise ConfigError(f"data.{key} must be in [0, 1]; got {getattr(d, key)}")
    if not d.leaves_defocus >= 0:
        raise ConfigError(f"data.leaves_defocus must be >= 0 (pixels of depth-of-field blur); got {d.leaves_defocus}")
    if d.leaves_size < 8 or min(d.leaves_reuse, d.render_reuse, d.val_blurs_per_image) < 1:
        raise ConfigError(f"data.leaves_size must be >= 8, data.leaves_reuse, data.render_reuse and "
                          f"data.val_blurs_per_image >= 1; got {d.leaves_size}, {d.leaves_reuse}, {d.render_reuse}, "
                          f"{d.val_blurs_per_image}")
    if not d.camera_gamma > 0:
        raise ConfigError(f"data.camera_gamma must be > 0 (2.2 is GoPro's blur_gamma curve); got {d.camera_gamma}")
