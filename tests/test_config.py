"""Config loading: space files, overrides, and errors that name the bad value and the valid ones."""
import re
from pathlib import Path

import pytest

from portable_deblur.models.candidate import expand
from portable_deblur.layout import RunLayout
from portable_deblur.config import REPO_ROOT, SPACES_DIR, available_spaces, load_config
from portable_deblur.registry import ConfigError

YAML_FILES = sorted(SPACES_DIR.glob("*.yaml")) + sorted((REPO_ROOT / "experiments").glob("*.yaml"))


def test_upsampling_space_is_table3_grid():
    cfg = load_config(["space=upsampling"])
    ids = [c.id for c in expand(cfg.arch, cfg.model, cfg.grid)]
    assert len(ids) == 6
    assert "unet__activation-prelu__upsampler-depth_to_space" in ids
    assert RunLayout.of(cfg).root == Path("experiments/runs/upsampling")


def test_overrides_are_typed_and_applied():
    cfg = load_config(["space=upsampling", "search.rungs=[]", "train.steps=7", "grid.activation=[gelu]", "model.width=8",
                       "measure.resolutions=[[256,256],[720,1280]]", "measure.resolution_set=paper",
                       "measure.threads=[1,2]"])
    assert cfg.train.steps == 7 and cfg.model["width"] == 8
    assert cfg.grid["activation"] == ["gelu"]
    assert cfg.measure.shapes == [(256, 256), (720, 1280), (360, 640), (900, 1600), (1080, 1920)]
    assert cfg.measure.threads == [1, 2]


@pytest.mark.parametrize("args, expected", [
    (["train.stepz=3"], r"'train.stepz'.*valid keys of train: \[.*'steps'"),
    (["bogus=1"], r"'bogus'.*valid keys: \[.*'train'"),
    (["space=nope"], r"space must be one of \['activation', 'architecture', 'attention', 'nafnet', 'nafnet_portable', 'optimization', 'portable', 'upsampling', 'upsampling_scratch'\] or a path to a .yaml file; got 'nope'"),
    (["train.loss=l3"], r"train.loss must be one of \['charbonnier', 'l1', 'psnr'\]; got 'l3'"),
    (["train.schedule=step"], r"train.schedule must be one of \['cosine', 'exponential'\]; got 'step'"),
    (["data.source=gopro"], r"data.root must be set for data.source='gopro'"),
    (["data.source=flickr"], r"data.source must be one of \['embedded', 'gopro', 'paired', 'reds'\]; got 'flickr'"),
    (["data.blur_space=gamma"], r"data.blur_space must be one of \['linear', 'mixed', 'srgb'\]; got 'gamma'"),
    (["data.leaves_share=1.5"], r"data.leaves_share must be in \[0, 1\]; got 1.5"),
    (["data.camera_gamma=0"], r"data.camera_gamma must be > 0.*got 0"),
    (["train.precision=fp16"], r"train.precision must be one of \['auto', 'float32', 'mixed_bfloat16', 'mixed_float16'\]; got 'fp16'"),
    (["train.init=/nonexistent/run"], r"train.init must be 'pretrained' \(the start the package ships\), a weight table \(.npz\), a run directory, .*'/nonexistent/run' does not exist"),
    (["train.crops_per_pair=0"], r"train.crops_per_pair must be >= 1; got 0"),
    (["train.warmup_steps=-1"], r"train.warmup_steps must be >= 0; got -1"),
    (["space=upsampling_scratch", "search.rungs=[]", "train.steps=0"],
     r"train.steps must be >= 1, or 0 with a train.init or search.weight_sharing=supernet .*got 0 with train.init=None"),
    (["data.val_images=[rocket]"], r"must not share photos.*rocket"),
    (["data.train_images=[mona_lisa]"], r"embedded photo must be one of \[.*got 'mona_lisa'"),
    (["train.steps=abc"], r"'train.steps'.*abc"),
    (["train.steps"], r"key=value"),
    (["measure.resolutions=[[256]]"], r"\[height, width\]"),
    (["measure.resolution_set=4k"], r"measure.resolution_set must be one of \['paper', 'phone'\]; got '4k'"),
    (["measure.backend=usb"], r"measure.backend must be one of \['adb', 'local'\]; got 'usb'"),
    (["measure.reference_repeats=0"], r"measure.reference_repeats must be >= 1; got 0"),
    (["portability.require=[tpu]"], r"portability target must be one of \['gpu', 'hexagon', 'neuron_apu', 'nnapi_api27'.*got 'tpu'"),
    (["portability.objective=gpu", "portability.targets=[xnnpack]"], r"objective 'gpu' must also be in portability.targets"),
    (["portability.on_violation=ignore"], r"on_violation must be one of \['flag', 'skip'\]"),
    (["optimize.prune=[30]"], r"optimize.prune entries must be MAC-reduction fractions in \(0, 1\).*got 30"),
    (["optimize.sparsity=[half]"], r"optimize.sparsity entries must be 'm:n' patterns.*got 'half'"),
    (["optimize.apply_to=front"], r"optimize.apply_to must be one of \['all', 'pareto'\]; got 'front'"),
    (["optimize.prune_multiple=0"], r"optimize.prune_multiple must be >= 1.*got 0"),
    (["run.name=../../escape"], r"run.name must be a folder name .*got '../../escape'"),
    (["run.name=a/b"], r"run.name must be a folder name .*got 'a/b'"),
    (["run.name=.hidden"], r"run.name must be a folder name .*got '.hidden'"),
    (["run.name=x..y"], r"run.name must be a folder name .*got 'x..y'"),
    (["space=upsampling", "space=nope"], r"space must be one of \[.*'upsampling', 'upsampling_scratch'\] or a path to a .yaml file; got 'nope'"),
    (["search.compare_run=/nonexistent/run"], r"search.compare_run must be a run directory.*'/nonexistent/run'"),
])
def test_bad_config_names_value_and_choices(args, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(args)


def test_a_supernet_is_a_start_that_train_steps_0_judges_as_it_is():
    cfg = load_config(["space=upsampling_scratch", "search.rungs=[]", "train.steps=0", "search.weight_sharing=supernet"])
    assert cfg.train.steps == 0 and cfg.train.init is None


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_yaml_starts_with_its_command(path):
    first = path.read_text().splitlines()[0]
    assert re.fullmatch(r"# python -m portable_deblur\.search (space=\S+)( \S+=\S+)*", first), first
    if path.parent == SPACES_DIR:
        assert f"space={path.stem}" in first


@pytest.mark.parametrize("space", available_spaces())
def test_every_space_key_is_a_builder_argument_and_every_candidate_builds(space, tiny_args):
    from portable_deblur.search.pretrain import check_candidates

    from portable_deblur.models.candidate import candidate_at

    cfg = load_config([f"space={space}", *tiny_args])
    candidates = expand(cfg.arch, cfg.model, cfg.grid)
    assert candidates
    if cfg.search.sampler != "grid":  # too many to build: every value of every key at least once
        keys = sorted(cfg.grid)
        rounds = max(len(cfg.grid[k]) for k in keys)
        candidates = [candidate_at(cfg.arch, cfg.model, {k: cfg.grid[k][i % len(cfg.grid[k])] for k in keys})
                      for i in range(rounds)]
    from portable_deblur.models.build import build_model, check_arguments
    from portable_deblur.models.layer_support import CHANNELS, LAYERS, QUANTIZE

    for c in candidates:
        check_arguments(c.arch, c.kwargs)  # every key is a builder argument
        for layer in build_model(c).layers:  # the one layer table knows every layer a builder uses
            entry = LAYERS.get(type(layer).__name__)
            assert entry is not None, f"{type(layer).__name__} ({layer.name}) is missing from models/layer_support.py"
            assert entry.quantize in QUANTIZE and entry.channels in CHANNELS
    if cfg.portability.require:
        check_candidates(cfg, candidates)  # the pre-training portability verdicts


def test_misspelt_model_argument_fails_with_valid_arguments(tiny_args):
    from portable_deblur.search.run import prepare

    with pytest.raises(ConfigError, match=r"'widht' is not accepted by arch 'unet'; valid: \[.*'width'"):
        prepare(["space=upsampling", *tiny_args, "model.widht=3"])


def test_cli_exits_2_with_message_before_work(tiny_args, capsys):
    from portable_deblur.search.run import main

    assert main(["space=upsampling", *tiny_args, "grid.upsampler=[pixelshufle]"]) == 2
    err = capsys.readouterr().err
    assert "upsampler must be one of ['bilinear', 'depth_to_space', 'transpose']; got 'pixelshufle'" in err
    assert not any(Path(a.split("=", 1)[1]).exists() for a in tiny_args if a.startswith("run.root="))


def test_quiet_stderr_drops_startup_noise_and_keeps_real_errors(capfd):
    import os

    from portable_deblur import console

    with console.quiet_stderr():
        os.write(2, b"E0000 00:00 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n")
        os.write(2, b"W0000 something real went wrong\n")
    err = capfd.readouterr().err
    assert "cuInit" not in err and "something real went wrong" in err


def test_log_level_is_validated_and_not_part_of_a_runs_identity(tiny_args):
    from portable_deblur.search.storage import comparable as _comparable

    with pytest.raises(ConfigError, match=r"log.level must be one of \['debug', 'error', 'info', 'warning'\]; got 'loud'"):
        load_config(["log.level=loud"])
    assert _comparable(load_config(["log.level=debug"])) == _comparable(load_config([]))


def test_a_key_given_twice_keeps_the_last_and_says_so(capsys):
    assert load_config(["train.steps=5", "search.rungs=[]", "train.steps=6"]).train.steps == 6
    assert load_config(["space=nafnet", "space=upsampling"]).space == "upsampling"
    err = capsys.readouterr().err
    assert "'train.steps=5' is overridden by 'train.steps=6'" in err and "'space=nafnet' is overridden" in err
