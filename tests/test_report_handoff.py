"""report.html (checked in headless Chromium), the report notebook (executed with nbclient), and the handoff
bundles app teams receive (verified with the standalone LiteRT runtime)."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from portable_deblur import files
from portable_deblur.handoff import bundle as handoff
from portable_deblur.records import ResultRow

REPO = Path(__file__).resolve().parents[1]
BASE = "unet__activation-relu__upsampler-depth_to_space"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_overrides):
    """One tiny search: two U-Nets, one with an int8 variant (so optimizations differ on the front), measured at
    32x32 and at 1280x720, the size an app runs (the front ranks by it)."""
    from portable_deblur.search.run import prepare, run_search

    root = tmp_path_factory.mktemp("runs")
    args = ["space=upsampling", *tiny_overrides, f"run.root={root}", "grid.upsampler=[depth_to_space,bilinear]",
            "grid.activation=[relu]", "optimize.ptq=[int8]", "optimize.representative_count=2", "run.name=tiny",
            "measure.resolutions=[[32,32],[720,1280]]"]
    cfg, violations, dataset, study = prepare(args)
    run_search(cfg, violations, study, dataset)
    return study.layout.root


def test_report_page_holds_every_section_and_its_images(tiny_run):
    page = (tiny_run / "report.html").read_text()
    for section in ("Pareto front", "What each choice costs", "All results", "Latency against resolution",
                    "Portability", "Visual crops"):
        assert f"<h2>{section}" in page, section
    for src in ("pareto.png", "latency_vs_resolution.png"):
        assert f"src='{src}'" in page and (tiny_run / src).is_file()
    crops = sorted((tiny_run / "crops").glob("*.png"))
    assert {p.stem.split("_", 1)[1] for p in crops} >= {"blurry", "sharp"}
    for crop in crops:
        assert f"crops/{crop.name}" in page
    assert BASE in page and f"{BASE}__ptq-int8" in page
    assert "NPU &gt; GPU &gt; CPU" in page and "nnapi_api27" not in page.split("<h2>Portability")[1].split("</p>")[1]
    assert "The deprecated NNAPI and Hexagon targets (hexagon, nnapi_api27" in page  # selectable, left out
    assert "over the 4 artifacts trained equally (3 steps)" in page
    assert "<h3>Per optimization" in page  # fp32 and int8 rows: each value's cost within one precision


def test_choice_effects_average_over_the_other_choices():
    from portable_deblur.rank import Objectives
    from portable_deblur.report.effects import choice_effects

    def row(up, act, db, ms, ptq=None, steps=900):
        values = {"upsampler": up, "activation": act, **({"ptq": ptq} if ptq else {})}
        return ResultRow(id=f"{up}-{act}-{ptq}-{steps}", arch="unet", values=values, status="ok", psnr_tflite=db,
                         latency={"1x1_t1": {"median_ms": ms}}, steps=steps)

    rows = [row("a", "relu", 30, 10), row("a", "prelu", 32, 14), row("b", "relu", 29, 8), row("b", "prelu", 31, 12),
            row("a", "relu", 29.5, 5, "int8"), row("c", "relu", 20, 1, steps=100)]  # a lower rung: left out
    effects = {(e["choice"], e["value"]): e for e in choice_effects(rows, Objectives("1x1_t1"))}
    assert effects[("activation", "prelu")]["mean_psnr_db"] == pytest.approx(31.5)
    assert effects[("activation", "prelu")]["delta_ms"] == pytest.approx(13 - 9.8)
    assert effects[("optimization", "int8")]["mean_latency_ms"] == 5
    assert effects[("upsampler", "b")]["artifacts"] == 2 and ("upsampler", "c") not in effects


def test_choice_effects_per_optimization_compare_values_within_one_precision():
    from portable_deblur.rank import Objectives
    from portable_deblur.report.effects import effects_per_optimization

    def row(norm, db, ms, ptq=None):
        values = {"norm": norm, **({"ptq": ptq} if ptq else {})}
        return ResultRow(id=f"{norm}-{ptq}", arch="nafnet", values=values, status="ok", psnr_tflite=db,
                         latency={"1x1_t1": {"median_ms": ms}}, steps=900)

    rows = [row("layer", 30, 35), row("batch", 29.9, 33), row("layer", 29.9, 176, "int8"), row("batch", 29.8, 15, "int8")]
    effects = {(e["optimization"], e["value"]): e for e in effects_per_optimization(rows, Objectives("1x1_t1"))}
    assert set(effects) == {("fp32", "layer"), ("fp32", "batch"), ("int8", "layer"), ("int8", "batch")}
    assert effects[("int8", "batch")]["delta_ms"] == pytest.approx(15 - (176 + 15) / 2)
    assert effects[("fp32", "batch")]["delta_ms"] == pytest.approx(-1)
    assert effects_per_optimization(rows[:2], Objectives("1x1_t1")) == []  # one optimization: nothing to split


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("PORTABLE_DEBLUR_REQUIRE_CHROMIUM"):
            pytest.fail("PORTABLE_DEBLUR_REQUIRE_CHROMIUM is set but no chromium is on PATH")
        pytest.skip("Chromium is not installed (CI installs Debian's chromium; apt-get install chromium)")
    return path


def test_report_renders_in_headless_chromium_without_errors(tiny_run, tmp_path):
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400"]
    url = (tiny_run / "report.html").as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="yes"' in dom.stdout  # the page's script ran to its end: no JavaScript error
    assert "Uncaught" not in dom.stderr
    shot = tmp_path / "report.png"
    result = subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    from skimage.io import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2400, 1280) and pixels.std() > 10  # rendered content, not a blank page


def test_report_notebook_executes_against_a_run(tiny_run):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "experiments" / "pareto_report.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    params[0].source = f"run = {str(tiny_run)!r}"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO / "experiments")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs) + "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "on the front" in text and BASE in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # Pareto, latency plots, crops
    assert "front under the constraints" in text


def test_handoff_bundles_verify_with_litert_and_tampering_is_caught(tiny_run, tmp_path, capsys):
    from portable_deblur.deploy.metadata import read

    out = tmp_path / "bundles"
    assert handoff.main([f"run={tiny_run}", f"candidate={BASE}__ptq-int8", f"out={out}", "version=2.1.0"]) == 0
    front = tmp_path / "front"  # separate: whether int8 makes the front depends on measured latency
    assert handoff.main([f"run={tiny_run}", "pareto=true", f"out={front}"]) == 0
    assert list(front.iterdir()) and all((b / "manifest.json").is_file() for b in front.iterdir())
    int8 = out / f"{BASE}__ptq-int8"
    manifest = json.loads((int8 / "manifest.json").read_text())
    assert manifest["golden"]["pairs"][0] == ["model.tflite", "golden_input.npy", "golden_output.npy"]
    sized = {name for pair in manifest["golden"]["pairs"][1:] for name in pair}
    assert {"model_32x32.tflite", "golden_input_32x32.npy", "golden_output_32x32.npy"} <= sized  # every measured size
    assert set(manifest["sha256"]) == {"model.tflite", "golden_input.npy", "golden_output.npy", "README.md", *sized}
    readme = (int8 / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in manifest["sha256"] if name.endswith(".tflite"))
    assert "model_<H>x<W>" not in readme and "each `model_" not in readme  # names only files that are there
    assert manifest["version"] == "2.1.0" and manifest["quantization"] == "int8"
    assert manifest["input"]["shape"] == [1, 720, 1280, 3] and manifest["input"]["range"] == [0.0, 1.0]
    assert manifest["pad_to_multiple_of"] == 16 and manifest["candidate"]["arguments"]["upsampler"] == "depth_to_space"
    assert any(op["op"] == "CONV_2D" and op["input_dtypes"] == "int8" for op in manifest["op_inventory"])
    assert "gpu" in manifest["delegate_fallback"] and "720x1280_t2" in manifest["latency"]
    assert manifest["libraries"]["ai-edge-litert"] != "not installed" and manifest["params"] > 0
    assert manifest["fp16_range"] is None  # an int8 file: the GPU check covers float files
    meta = read((int8 / "model.tflite").read_bytes())
    assert meta["name"] == f"{BASE}__ptq-int8" and meta["version"] == "2.1.0"
    assert meta["inputs"][0]["std"] == [255.0] and meta["inputs"][0]["height"] == 720
    assert "height and width in multiples of 16" in readme
    golden = np.load(int8 / "golden_input.npy")
    assert golden.shape == (1, 720, 1280, 3) and golden.std() > 0.01  # a real image, not a constant

    handoff.verify_bundle(int8)  # passes untouched
    data = bytearray((int8 / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (int8 / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256 mismatch for .*model.tflite"):
        handoff.verify_bundle(int8)
    assert handoff.main([f"verify={int8}"]) == 2
    assert "SHA-256 mismatch" in capsys.readouterr().err


def test_handoff_at_the_apps_sizes_exports_verifies_and_times_each(tiny_run, tmp_path):
    out = tmp_path / "sized"
    assert handoff.main([f"run={tiny_run}", f"candidate={BASE}__ptq-int8", f"out={out}", "resolution=48x64,40x40"]) == 0
    bundle = out / f"{BASE}__ptq-int8"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {"48x64", "40x40", "32x32"} <= set(manifest["resolutions"])  # asked for, and measured by the run
    sized, padded = manifest["resolutions"]["48x64"], manifest["resolutions"]["40x40"]
    assert sized["input"]["shape"] == [1, 48, 64, 3] and sized["latency"]["median_ms"] > 0
    assert padded["padded_to"] == "48x48" and padded["input"]["shape"] == [1, 48, 48, 3]  # multiple of 16
    assert {"model_48x64.tflite", "golden_input_48x64.npy", "golden_output_48x64.npy"} <= set(manifest["sha256"])
    assert any(op["input_dtypes"] == "int8" for op in manifest["op_inventory"])  # still the int8 artifact
    assert "model_48x64.tflite" in (bundle / "README.md").read_text()
    assert manifest["candidate"]["channels"]["out_conv"] == 3  # the widths the file has
    handoff.verify_bundle(bundle)  # every size's golden pair reproduced with LiteRT
    (bundle / "golden_output_40x40.npy").write_bytes((bundle / "golden_output_48x64.npy").read_bytes())
    with pytest.raises(ValueError, match="SHA-256 mismatch for .*golden_output_40x40.npy"):
        handoff.verify_bundle(bundle)


def test_a_bundles_readme_followed_for_a_720p_frame_reproduces_the_golden_output(tiny_run, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    assert handoff.main([f"run={tiny_run}", f"candidate={BASE}", f"out={tmp_path}"]) == 0
    bundle = tmp_path / BASE
    readme = (bundle / "README.md").read_text()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["fp16_range"]) == {"32x32", "720x1280"} and "## fp16 on a GPU" in readme  # a float file
    # "Pick the file whose input shape is your frame's size": the README's line for 720x1280 frames.
    line = next(line for line in readme.splitlines() if "for 720x1280 frames" in line)
    model, golden_in, golden_out = re.findall(r"`([^`]+\.(?:tflite|npy))`", line)
    # "Checking your integration": LiteRT, one thread, the golden input, invoke, within golden.atol.
    interpreter = Interpreter(model_path=str(bundle / model), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert list(inp["shape"]) == [1, 720, 1280, 3]
    interpreter.set_tensor(inp["index"], np.load(bundle / golden_in))
    interpreter.invoke()
    atol = json.loads((bundle / "manifest.json").read_text())["golden"]["atol"]
    assert np.max(np.abs(interpreter.get_tensor(out["index"]) - np.load(bundle / golden_out))) <= atol
    # "Feeding it": a 720p frame as pixel / 255 gives a frame back as clip(value, 0, 1) * 255.
    frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    interpreter.set_tensor(inp["index"], (frame / 255.0).astype(np.float32)[None])
    interpreter.invoke()
    sharp = np.clip(interpreter.get_tensor(out["index"])[0], 0, 1) * 255
    assert sharp.shape == frame.shape and np.isfinite(sharp).all()
    # "Another frame size": the README's own command exports one more size into the bundle.
    command = next(line.strip(" `") for line in readme.splitlines() if "resolution=HEIGHTxWIDTH" in line)
    args = command.replace("HEIGHTxWIDTH", "48x64").split()[3:]
    assert handoff.main([*args, f"out={tmp_path / 'more'}"]) == 0
    assert (tmp_path / "more" / BASE / "model_48x64.tflite").is_file()


def test_handoff_errors_name_the_bad_value(tiny_run, capsys):
    assert handoff.main([f"run={tiny_run}", "candidate=unet__nope"]) == 2
    err = capsys.readouterr().err
    assert "candidate must be the id of a finished artifact" in err and BASE in err
    assert handoff.main([f"run={tiny_run}"]) == 2
    assert "candidate=<id>" in capsys.readouterr().err
    assert handoff.main(["rnu=x"]) == 2
    assert "key one of ['run'" in capsys.readouterr().err
    assert handoff.main([f"run={tiny_run}", "pareto=true", "resolution=720by1280"]) == 2
    assert "resolution must be HEIGHTxWIDTH sizes separated by commas (e.g. 720x1280,1080x1920); got '720by1280'" \
        in capsys.readouterr().err
    assert handoff.main([f"run={tiny_run}", "candidate=unet__nope", "candidate=unet__gone"]) == 2
    err = capsys.readouterr().err
    assert "handoff 'candidate=unet__nope' is overridden by 'candidate=unet__gone'" in err and "unet__gone" in err
    assert handoff.main([f"run={tiny_run}", "pareto=true", f"out={tiny_run / 'results.csv'}"]) == 2
    assert "out= must be a folder" in capsys.readouterr().err


def test_a_screened_row_is_not_handed_off():
    from portable_deblur.records import ResultRow
    from portable_deblur.registry import ConfigError

    front = ResultRow(id="unet__a", arch="unet", values={}, status="ok")
    low = ResultRow(id="unet__b", arch="unet", values={}, status="ok", screened=True)
    with pytest.raises(ConfigError, match=r"candidate 'unet__b' was only screened .* \['unet__a'\].*search.screen=false"):
        handoff.choose([front, low], [front], "unet__b", False)
    assert handoff.choose([front, low], [front], "unet__a", False) == [front]


def test_interrupted_handoff_leaves_no_truncated_file(tiny_run, tmp_path, monkeypatch):
    real = os.replace

    def interrupted(src, dst):
        if str(dst).endswith("model.tflite"):
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        handoff.handoff(str(tiny_run), candidate=BASE, out=str(tmp_path / "b"))
    folder = tmp_path / "b" / BASE
    assert not (folder / "model.tflite").exists() and not list(folder.glob(".*tmp"))
