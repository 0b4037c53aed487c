"""Benchmark: fp16 range per layer (``deploy/fp16_range.py``) at 256x256 and 1280x720, checked against what
LiteRT's GPU accelerator outputs where the Vulkan adapter computes in fp16 (Mesa's lavapipe).

For each network -- the default U-Net (relu/bilinear from the shipped pretrained start), NAFNet-16-9 trained
``--steps`` on the embedded data, and a control built to overflow (a LayerNorm after a 1x1 conv spreading each
pixel over 64 channels at +-``--gain``), plain and as ``norm=scaled_layer`` reduces it -- prints the largest quantity per size and every one flagged (above a
quarter of 65504), then, with an adapter, the float file's output through the GPU accelerator against LiteRT's
CPU output on the same frame: max |difference| and PSNR between the two.

    python benchmarks/fp16_range.py [--steps 300] [--gain 100] [--sizes 256x256 720x1280]
    python benchmarks/fp16_range.py --tiny   # smoke scale: a width-4 U-Net and the control at 32x32
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def control(gain: float, scale: float = 1.0):
    """Input -> 1x1 conv to 64 channels at +-gain -> LayerNorm (reduced in a ``scale`` domain) -> 1x1 conv back
    to 3 (a quarter of the first normalised channel): the output is 0.25 exactly when the LayerNorm's sums are
    computed right."""
    from portable_deblur.backend import keras
    from portable_deblur.models.layers import ChannelLayerNorm

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(64, 1, use_bias=False, name="spread")(inputs)
    x = ChannelLayerNorm(scale=scale, name="norm")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, use_bias=False, name="back")(x))
    spread = np.zeros((1, 1, 3, 64), np.float32)
    spread[0, 0, 0, ::2], spread[0, 0, 0, 1::2] = gain, -gain
    model.get_layer("spread").set_weights([spread])
    back = np.zeros((1, 1, 64, 3), np.float32)
    back[0, 0, 0, :] = 0.25  # the first normalised channel, +1 where the sums fit: 0.25 in every output channel
    model.get_layer("back").set_weights([back])
    return model


def controls(gain: float):
    """The control with NAFNet's LayerNorm and with ``norm=scaled_layer``'s (reduced in an x/128 domain)."""
    from portable_deblur.models.nafnet import LAYER_NORM_SCALE

    return [(f"control: LayerNorm after a +-{gain:g} spread", control(gain)),
            (f"control: scaled_layer LayerNorm (x/{1 / LAYER_NORM_SCALE:g}) after a +-{gain:g} spread",
             control(gain, LAYER_NORM_SCALE))]


def networks(args):
    """(label, Keras model) of the networks to check."""
    from portable_deblur.config import load_config
    from portable_deblur.config.smoke import SMOKE
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.models.build import build_model
    from portable_deblur.models.candidate import expand
    from portable_deblur.train.fit import fit, seed_everything
    from portable_deblur.train.start import apply_start, configured_start

    smoke = SMOKE if args.tiny else []
    unet_cfg = load_config(["space=upsampling", *smoke])
    unet = next(c for c in expand(unet_cfg.arch, unet_cfg.model, unet_cfg.grid) if c.values.get("upsampler") == "bilinear")
    model = build_model(unet)
    apply_start(model, unet, configured_start(unet_cfg.train.init, unet.id))
    out = [(f"U-Net {unet.id} ({unet_cfg.train.init or 'initialiser'} start)", model)]
    if args.tiny:  # smoke scale: the U-Net and the control (NAFNet's probes are the same code)
        return out + controls(args.gain), unet_cfg
    naf_cfg = load_config(["space=nafnet", *smoke, f"train.steps={args.steps}", "search.rungs=[]",
                           "grid.width=[4]" if args.tiny else "grid.width=[16]", "grid.enc_blocks=[[1,1,1,1]]"])
    naf = expand(naf_cfg.arch, naf_cfg.model, naf_cfg.grid)[0]
    seed_everything(naf_cfg.train.seed, naf_cfg.train.jit_compile)
    model = build_model(naf)
    fit(model, load_dataset(naf_cfg.data).train, naf_cfg.train, desc=naf.id)
    out.append((f"NAFNet {naf.id} ({args.steps} steps)", model))
    return out + controls(args.gain), unet_cfg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--gain", type=float, default=100.0)
    parser.add_argument("--sizes", nargs="+", default=["256x256", "720x1280"])
    parser.add_argument("--tiny", action="store_true", help="smoke scale: a width-4 U-Net and the control, 32 px")
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.sizes = 2, ["32x32"]
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.deploy.export import representative_inputs, to_tflite
    from portable_deblur.deploy.fp16_range import fp16_report, risk_text
    from portable_deblur.deploy.gpu import GpuPredictor, adapter_precision, vulkan_icd
    from portable_deblur.deploy.runtime import predictor

    models, cfg = networks(args)
    train = load_dataset(cfg.data).train
    shapes = {size: tuple(int(v) for v in size.split("x")) for size in args.sizes}
    frames = {size: [f[0] for f in representative_inputs(train, shape, 2, cfg.data.seed)()] for size, shape in shapes.items()}
    icd = vulkan_icd()
    print(f"GPU accelerator: {icd or 'no Vulkan adapter'} ({adapter_precision(icd) or 'precision unknown'})")
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in models:
            report = fp16_report(model, frames)
            print(f"\n{label}")
            for size, found in report.items():
                largest = found["largest"]
                print(f"  {size:9} largest {largest['layer']} {largest['kind']} {largest['value']:.3g}; "
                      f"{len(found['risky'])} flagged")
                if icd is None:
                    continue
                path = Path(tmp) / f"{abs(hash(label))}_{size}.tflite"
                path.write_bytes(to_tflite(model, shapes[size]))
                x = frames[size][0]
                cpu = predictor(path)(x)
                with GpuPredictor(path) as gpu:
                    y = gpu(x)
                diff = np.abs(np.nan_to_num(y, nan=1e9, posinf=1e9, neginf=1e9) - cpu)
                mse = float(np.mean(np.clip(diff, 0, 1) ** 2))
                print(f"            GPU accelerator vs CPU: max |diff| {diff.max():.3g}, PSNR "
                      f"{10 * np.log10(1 / max(mse, 1e-12)):.1f} dB, non-finite outputs {int((~np.isfinite(y)).sum())}")
            print(f"  {risk_text(report) or 'nothing near fp16 range'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
