"""8-bit QAT (TF-MOT) for every layer the builders can produce: fake-quant twin, data-initialised ranges,
full-int8 conversion, and the QAT row of the pipeline."""
import dataclasses

import numpy as np
import pytest

from portable_deblur.models.blocks import ACTIVATIONS, UPSAMPLERS
from portable_deblur.deploy.export import representative_inputs
from portable_deblur.deploy.flatbuffer import op_inventory
from portable_deblur.models.nafnet import build_nafnet
from portable_deblur.optimize.qat import QUANTIZE_CONFIGS, init_ranges, quantize_aware, to_int8
from portable_deblur.deploy.runtime import predictor
from portable_deblur.models.unet import build_unet
from test_nafnet import OPTIONS


def _unet(**kwargs):
    return build_unet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], middle_blocks=1, **kwargs)


def _nafnet(**kwargs):
    return build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], **kwargs)


MODELS = ([(f"unet-{u}-relu", lambda u=u: _unet(upsampler=u)) for u in sorted(UPSAMPLERS)]
          + [(f"unet-bilinear-{a}", lambda a=a: _unet(upsampler="bilinear", activation=a))
             for a in sorted(ACTIVATIONS) if a != "relu"]
          + [("nafnet-" + ("-".join(f"{k}={v}" for k, v in o.items()) or "default"), lambda o=o: _nafnet(**o))
             for o in OPTIONS])


@pytest.mark.parametrize("name, build", MODELS, ids=[m[0] for m in MODELS])
def test_every_buildable_model_gets_a_quantize_aware_twin(name, build):
    model = build()
    qat = quantize_aware(model)  # raises for any layer neither TF-MOT nor QUANTIZE_CONFIGS covers
    x = np.random.default_rng(0).random((1, 32, 32, 3), np.float32)
    assert qat(x).shape == model(x).shape
    assert set(QUANTIZE_CONFIGS) >= {"DepthToSpace", "PReLU", "ChannelLayerNorm", "SimpleGate", "ChannelScale"}


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [dict(upsampler="bilinear", activation="relu"),
                                    dict(upsampler="depth_to_space", activation="prelu"),
                                    dict(upsampler="transpose", activation="relu6"), dict(arch="nafnet")],
                         ids=lambda k: "-".join(map(str, k.values())))
def test_qat_converts_to_int8_with_int8_convs_and_matches_its_fake_quant_model(kwargs, tiny_cfg, tiny_dataset):
    from portable_deblur.train.fit import fit, seed_everything

    seed_everything(0, False)
    model = _nafnet() if kwargs.get("arch") == "nafnet" else _unet(**kwargs)
    fit(model, tiny_dataset.train, dataclasses.replace(tiny_cfg.train, steps=10))
    qat = quantize_aware(model)
    rep = representative_inputs(tiny_dataset.train, (32, 32), 4)
    assert init_ranges(qat, model, [x[0] for x in rep()]) > 0
    mins = [float(v.numpy()) for layer in qat.layers for v in layer.non_trainable_weights
            if v.name.endswith("post_activation_min:0") or v.name.endswith("output_min:0")]
    assert mins and all(m > -6.0 for m in mins)  # ranges came from data, not TF-MOT's initial [-6, 6]
    fit(qat, tiny_dataset.train, dataclasses.replace(tiny_cfg.train, steps=3, learning_rate=1e-4))
    flat = to_int8(qat, (32, 32))
    conv = [op for op in op_inventory(flat) if op.name == "CONV_2D"]
    assert conv and all("int8" in op.input_dtypes for op in conv)
    x = rep()
    fake = qat(next(x)[0], training=False).numpy()
    real = predictor(flat)(next(rep())[0])
    err = np.sqrt(np.mean((fake - real) ** 2))
    assert 20 * np.log10(1.0 / max(err, 1e-9)) > 30  # int8 file follows its fake-quant Keras model


@pytest.mark.slow
def test_qat_variant_is_a_row_of_the_search(tiny_args):
    from portable_deblur.search.run import prepare, run_search

    args = ["space=upsampling", *tiny_args, "grid.upsampler=[depth_to_space]", "grid.activation=[relu]",
            "optimize.qat_steps=3", "optimize.representative_count=2"]
    cfg, violations, dataset, study = prepare(args)
    run_search(cfg, violations, study, dataset)
    rows = {r.id: r for r in study.rows()}
    qat = rows["unet__activation-relu__upsampler-depth_to_space__qat-int8"]
    assert qat.status == "ok", qat.error
    assert qat.values["qat"] == "int8" and (study.layout.root / qat.artifacts["primary"]).name == "qat_int8_32x32.tflite"
    assert any(op["op"] == "CONV_2D" and op["input_dtypes"] == "int8" for op in qat.inventory)
    assert qat.fidelity_psnr > 30 and qat.seconds["qat"] > 0
