"""Measured GPU placement: LiteRT's own GPU accelerator on this host's Vulkan adapter (Mesa lavapipe from
bookworm-backports, else SwiftShader from chromium; CI installs both), not the table's prediction."""
import os

from pathlib import Path

import numpy as np
import pytest

from portable_deblur.deploy.gpu import (ENV_ICD, ICD_CANDIDATES, GpuPlacement, GpuPredictor, adapter_precision,
                                        measure_placement, parse_report, vulkan_icd)
from portable_deblur.records import ResultRow
from portable_deblur.search.artifact import measured_violations

# What the runtime printed for a 16x8 U-Net (ai-edge-litert 2.3, SwiftShader), shortened.
REPORT = """INFO: [delegate_webgpu.cc:363] Created a WebGPU environment.
ERROR: Following operations are not supported by GPU delegate:
CONV_2D: Tensor type(INT16) is not supported. serving_default_blurry:0_int16
CONV_2D: Tensor type(INT16) is not supported. unet/dec0_concat/concat
DEQUANTIZE: Unsupported dequantization type.
QUANTIZE: Tensor type(INT16) is not supported. unet/up0_tconv/conv2d_transpose1
1 operations will run on the GPU, and the remaining 16 operations will run on the CPU.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
"""


def test_the_runtimes_report_is_parsed_into_ops_and_counts():
    placement = parse_report(REPORT, 17, "swiftshader")
    assert (placement.gpu_ops, placement.cpu_ops) == (1, 16) and not placement.fully_delegated
    assert placement.rejected == {"CONV_2D": "Tensor type(INT16) is not supported.",
                                  "DEQUANTIZE": "Unsupported dequantization type.",
                                  "QUANTIZE": "Tensor type(INT16) is not supported."}
    assert parse_report("INFO: Created a WebGPU environment.\n", 15, "swiftshader") == GpuPlacement("swiftshader", 15, 0)


def test_the_measured_verdict_replaces_the_tables_for_a_required_gpu():
    ok, split = GpuPlacement("a", 10, 0), GpuPlacement("a", 8, 2, {"PRELU": "x."})
    assert measured_violations(["gpu", "nnapi_api28"], ok, ["gpu", "nnapi_api28"]) == ["nnapi_api28"]
    assert measured_violations([], split, ["gpu"]) == ["gpu"]
    assert measured_violations(["gpu"], None, ["gpu"]) == ["gpu"]  # no adapter: the table verdict stands


def test_the_report_shows_the_measured_column_and_a_disagreement():
    from portable_deblur.report.portability import portability_rows

    row = ResultRow(id="a", arch="unet", values={}, status="ok",
                    portability={"gpu": {"fallback": {}, "accelerator_mac_fraction": 1.0}},
                    gpu_measured={"adapter": "swiftshader", "gpu_ops": 8, "cpu_ops": 2, "rejected": {"PRELU": "x."}})
    entry = portability_rows([row])[0]
    assert entry["gpu"] == "ok"
    assert entry["gpu (measured)"] == "PRELU (2 of 10 ops on the CPU) -- the table predicted ok"


def test_the_gpu_objective_uses_the_measured_share_and_the_report_says_so():
    from portable_deblur.deploy.flatbuffer import OpRecord
    from portable_deblur.deploy.portability import mac_fraction
    from portable_deblur.rank import Objectives
    from portable_deblur.report.html import _ranking_basis

    ops = [OpRecord(0, "CONV_2D", 1, ("float32",), ("float32",), (1, 8, 8, 4), 90, {}),
           OpRecord(1, "PRELU", 1, ("float32",), ("float32",), (1, 8, 8, 4), 10, {})]
    assert mac_fraction(ops, ["PRELU"]) == pytest.approx(0.9)
    table = {"gpu": {"fallback": {}, "accelerator_mac_fraction": 1.0}}
    measured = ResultRow(id="a", arch="unet", values={}, status="ok", portability=table, gpu_measured={
        "adapter": "s", "gpu_ops": 8, "cpu_ops": 2, "rejected": {"PRELU": "x."}, "accelerator_mac_fraction": 0.9})
    predicted = ResultRow(id="b", arch="unet", values={}, status="ok", portability=table)
    spec = Objectives("256x256_t2", target="gpu")
    assert spec.values(measured)[2] == 0.9 and spec.values(predicted)[2] == 1.0
    assert "MACs gpu keeps, is measured (" in _ranking_basis([measured], spec)
    assert "is measured and table (" in _ranking_basis([measured, predicted], spec)


@pytest.fixture(scope="module")
def adapter():
    if vulkan_icd() is None:
        if os.environ.get("PORTABLE_DEBLUR_REQUIRE_CHROMIUM"):
            pytest.fail("no Vulkan driver manifest: chromium's vk_swiftshader_icd.json is missing")
        pytest.skip("no Vulkan adapter on this host (install chromium for SwiftShader)")
    return vulkan_icd()


@pytest.mark.slow
def test_a_model_the_gpu_accelerator_rejects_is_caught_by_the_measured_path(adapter, tmp_path):
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.files import atomic_write
    from portable_deblur.models.unet import build_unet

    model = build_unet(width=4, enc_blocks=[1], dec_blocks=[1], middle_blocks=1)
    fp32 = atomic_write(tmp_path / "fp32.tflite", to_tflite(model, (32, 32)))
    rep = lambda: ([np.random.default_rng(i).random((1, 32, 32, 3), np.float32)] for i in range(2))  # noqa: E731
    int16 = atomic_write(tmp_path / "int16x8.tflite", to_tflite(model, (32, 32), "int16x8", rep))
    accepted = measure_placement(fp32)
    assert accepted is not None and accepted.fully_delegated and accepted.gpu_ops > 0
    refused = measure_placement(int16)  # 16-bit activations: the GPU accelerator has no int16 kernels
    assert refused.cpu_ops > 0 and "CONV_2D" in refused.rejected
    assert "INT16" in refused.rejected["CONV_2D"]


def test_a_required_gpu_is_judged_before_training_by_the_measured_path(adapter, tiny_args, monkeypatch):
    from portable_deblur.config import load_config
    from portable_deblur.deploy import gpu
    from portable_deblur.models.candidate import expand
    from portable_deblur.search.pretrain import violations_of

    cfg = load_config(["space=upsampling", *tiny_args, "portability.require=[gpu]", "grid.upsampler=[bilinear]",
                       "grid.activation=[prelu]"])
    candidate = expand(cfg.arch, cfg.model, cfg.grid)[0]
    assert violations_of(cfg, candidate) == {}  # the untrained network compiles fully onto the GPU accelerator
    monkeypatch.setattr(gpu, "measure_placement", lambda path: GpuPlacement("a", 9, 1, {"PRELU": "Not supported."}))
    assert violations_of(cfg, candidate) == {"gpu": "measured: PRELU (Not supported.)"}


@pytest.mark.slow
def test_gpu_psnr_is_the_float_files_quality_through_the_gpu_accelerator(adapter, tiny_args, tiny_dataset):
    from portable_deblur.config import load_config
    from portable_deblur.layout import RunLayout
    from portable_deblur.models.build import build_model
    from portable_deblur.models.candidate import expand
    from portable_deblur.optimize.plan import TRAINED, plan
    from portable_deblur.search.trial import make_artifacts
    from portable_deblur.train.judge import judged

    cfg = load_config(["space=upsampling", *tiny_args, "grid.upsampler=[bilinear]", "grid.activation=[relu]",
                       "measure.gpu_psnr=true", "optimize.ptq=[int8]", "optimize.representative_count=2"])
    layout, candidate = RunLayout.of(cfg), expand(cfg.arch, cfg.model, cfg.grid)[0]
    model = build_model(candidate)
    out = model.get_layer("out_conv")  # a non-identity network, so the comparison means something
    out.set_weights([np.random.default_rng(1).normal(0, 0.05, w.shape) for w in out.get_weights()])
    trained = judged(candidate, model, cfg, tiny_dataset, layout.folder(candidate.id), TRAINED)
    fp32, int8 = make_artifacts(trained, plan(cfg.optimize), cfg, tiny_dataset, layout, [])
    fp16 = adapter_precision(vulkan_icd()) == "fp16"  # lavapipe: a phone GPU's fp16 drop; SwiftShader: fp32
    assert fp32.psnr_gpu == pytest.approx(fp32.psnr_tflite, abs=0.5 if fp16 else 0.05)
    assert fp32.psnr_gpu != fp32.psnr_blurry and "evaluate_gpu" in fp32.seconds
    assert np.isnan(int8.psnr_gpu)  # integer files: the GPU column is for float artifacts
    assert "psnr_gpu" in fp32.flat()


def test_lavapipe_computes_in_fp16_and_swiftshader_in_fp32(adapter, tmp_path, monkeypatch):
    """What ``psnr_gpu`` means depends on the adapter: lavapipe (preferred) gives the fp16 outputs a phone GPU
    gives, SwiftShader the fp32 ones; both are told apart from the CPU interpreter's output."""
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.files import atomic_write
    from portable_deblur.models.unet import build_unet

    lavapipe, swiftshader = ICD_CANDIDATES
    if not Path(lavapipe).is_file():
        if os.environ.get("PORTABLE_DEBLUR_REQUIRE_LAVAPIPE"):
            pytest.fail(f"no {lavapipe}: install mesa-vulkan-drivers >= 25 (bookworm-backports)")
        pytest.skip("no Mesa lavapipe >= 25 on this host")
    model = build_unet(width=8, enc_blocks=[1], dec_blocks=[1], middle_blocks=1)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    path = atomic_write(tmp_path / "fp32.tflite", to_tflite(model, (32, 32)))
    x = rng.random((1, 32, 32, 3), np.float32)
    cpu = predictor(path.read_bytes(), 1)(x)
    agreement = {}
    for icd in (lavapipe, swiftshader):
        monkeypatch.setenv(ENV_ICD, icd)
        with GpuPredictor(path) as gpu:
            agreement[adapter_precision(icd)] = float(np.abs(gpu(x) - cpu).max() / np.abs(cpu).max())
    assert 1e-5 < agreement["fp16"] < 2e-2, agreement  # half-precision rounding: close, not equal
    assert agreement["fp32"] < 1e-5, agreement


def test_an_old_runs_config_without_a_newer_setting_still_resumes():
    from portable_deblur.search.storage import same_config

    defaults = {"measure": {"runs": 20, "gpu_psnr": False}, "space": "upsampling"}
    saved = {"measure": {"runs": 20}, "space": "upsampling"}  # written before measure.gpu_psnr existed
    assert same_config(saved, {"measure": {"runs": 20, "gpu_psnr": False}, "space": "upsampling"}, defaults)
    assert not same_config(saved, {"measure": {"runs": 20, "gpu_psnr": True}, "space": "upsampling"}, defaults)
    assert not same_config(saved, {"measure": {"runs": 5, "gpu_psnr": False}, "space": "upsampling"}, defaults)


def _lavapipe_or_skip():
    lavapipe = ICD_CANDIDATES[0]
    if not Path(lavapipe).is_file():
        if os.environ.get("PORTABLE_DEBLUR_REQUIRE_LAVAPIPE"):
            pytest.fail(f"no {lavapipe}: install mesa-vulkan-drivers >= 25 (bookworm-backports)")
        pytest.skip("no Mesa lavapipe >= 25 on this host")
    return lavapipe


def test_a_scaled_layer_norm_keeps_its_sums_inside_fp16_and_the_gpu_computes_it(tmp_path, monkeypatch):
    """A LayerNorm over 64 channels at +-100, beside flat pixels (zero variance, where only epsilon keeps rsqrt
    finite): its sum of squares (6.4e5) passes 65504 -- a GPU accumulating in fp16 overflows there; reduced in
    ``norm=scaled_layer``'s x/128 domain it is 39, and lavapipe's fp16 output is right everywhere. A NAFNet
    with the ported norm and SCA's global pool as two single-axis means runs whole on the GPU."""
    from portable_deblur.backend import keras
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.fp16_range import FP16_MAX, peaks
    from portable_deblur.deploy.runtime import predictor
    from portable_deblur.files import atomic_write
    from portable_deblur.models.layers import ChannelLayerNorm
    from portable_deblur.models.nafnet import LAYER_NORM_SCALE, build_nafnet

    monkeypatch.setenv(ENV_ICD, _lavapipe_or_skip())
    spread = np.zeros((1, 1, 3, 64), np.float32)
    spread[0, 0, 0, ::2], spread[0, 0, 0, 1::2] = 100, -100
    back = np.zeros((1, 1, 64, 3), np.float32)
    back[0, 0, 0, :] = 0.25  # a quarter of the first normalised channel: 0.25 where the sums are right
    x = np.ones((1, 8, 8, 3), np.float32)
    x[:, :4] = 0  # flat pixels: they normalise to 0
    right = np.where(x > 0, 0.25, 0.0)
    squares, error = {}, {}
    for scale in (1.0, LAYER_NORM_SCALE):
        inputs = keras.Input((8, 8, 3))
        y = ChannelLayerNorm(scale=scale, name="norm")(keras.layers.Conv2D(64, 1, use_bias=False, name="spread")(inputs))
        model = keras.Model(inputs, keras.layers.Conv2D(3, 1, use_bias=False, name="back")(y))
        model.get_layer("spread").set_weights([spread])
        model.get_layer("back").set_weights([back])
        squares[scale] = max(p.value for p in peaks(model, [x]) if p.kind == "sum of squares")
        path = atomic_write(tmp_path / f"ln_{scale:g}.tflite", to_tflite(model, (8, 8)))
        np.testing.assert_allclose(predictor(path.read_bytes(), 1)(x), right, atol=1e-4)  # right in float32
        with GpuPredictor(path) as gpu:
            error[scale] = float(np.nan_to_num(np.abs(gpu(x) - right), nan=np.inf).max())
    assert squares[1.0] > FP16_MAX > 1000 * squares[LAYER_NORM_SCALE], squares
    assert error[LAYER_NORM_SCALE] < 1e-3, error
    naf = build_nafnet(width=4, enc_blocks=[1, 1], dec_blocks=[1, 1], norm="scaled_layer", global_pool="axis_means")
    placement = measure_placement(atomic_write(tmp_path / "naf.tflite", to_tflite(naf, (32, 32))))
    assert placement.fully_delegated, placement
