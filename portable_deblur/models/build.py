"""Architecture registry: turns a candidate into a Keras model."""
import inspect
from dataclasses import dataclass
from typing import Callable, Tuple

from portable_deblur.models import nafnet

from portable_deblur.models import unet
from portable_deblur.registry import ConfigError, lookup


@dataclass(frozen=True)
class Architecture:
    """A builder (keyword arguments = YAML keys), the input-size multiple it needs, and the searched keys a
    weight-sharing supernet can hold: op choices at fixed positions that keep every shape (``choose``), and
    elastic keys -- the width (``models/elastic.py``) and block counts (``choice.repeat``)."""

    build: Callable
    size_multiple: Callable[..., int]
    choice_keys: Tuple[str, ...] = ()
    elastic_keys: Tuple[str, ...] = ("width", "enc_blocks", "middle_blocks", "dec_blocks")

    @property
    def shareable(self) -> Tuple[str, ...]:
        return tuple(sorted(self.choice_keys + self.elastic_keys))


ARCHITECTURES = {
    "unet": Architecture(build=unet.build_unet, size_multiple=unet.size_multiple,
                         choice_keys=("activation", "upsampler")),
    # NAFNet's gate changes conv1/conv4's widths, so only options that keep every shape are shared.
    "nafnet": Architecture(build=nafnet.build_nafnet, size_multiple=nafnet.size_multiple,
                           choice_keys=("attention_activation", "attention_norm", "attention_upsample", "global_pool", "norm",
                                        "tlc_pool")),
}


def get_architecture(name: str) -> Architecture:
    """Return the registered architecture ``name``."""
    return lookup(ARCHITECTURES, "arch", name)


def builder_arguments(arch: str) -> list:
    """The keyword arguments a YAML ``model:``/``grid:`` block may set for ``arch``."""
    params = inspect.signature(get_architecture(arch).build).parameters
    return sorted(p for p in params if p != "name")


def check_arguments(arch: str, kwargs: dict) -> None:
    """Raise ConfigError for any key that is not a keyword argument of ``arch``'s builder."""
    valid = builder_arguments(arch)
    for key in sorted(kwargs):
        if key not in valid:
            raise ConfigError(f"model argument {key!r} is not accepted by arch {arch!r}; valid: {valid}")


def build_model(candidate):
    """Build the Keras model of ``candidate`` (a :class:`portable_deblur.candidate.Candidate`)."""
    check_arguments(candidate.arch, candidate.kwargs)
    return get_architecture(candidate.arch).build(**candidate.kwargs, name=candidate.arch)


def size_multiple(candidate) -> int:
    """Height/width multiple the candidate's model needs (pad evaluation images to it)."""
    return get_architecture(candidate.arch).size_multiple(**candidate.kwargs)
