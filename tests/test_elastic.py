"""Elastic width and depth in weight sharing: one supernet runs every width (the leading channels of each
layer) and block count (the first blocks of each level), each candidate extracted as its own plain model."""
from pathlib import Path

import numpy as np
import pytest

from portable_deblur.models.candidate import expand
from portable_deblur.registry import ConfigError

UNET = {"middle_blocks": 1, "residual": True}
UNET_GRID = {"width": [4, 8], "enc_blocks": [[1, 1], [2, 2]], "activation": ["prelu"],  # a per-channel slope
             "upsampler": ["transpose", "depth_to_space", "bilinear"]}  # kernel axes swapped; four channel groups
# NAFNet with everything that groups channels: SimpleGate halves, DepthToSpace quarters, SCA's per-channel
# attention, attention gates in the skips, TLC's local pools on 32-px inputs.
NAFNET = {"dec_blocks": [1, 1], "attention": "gate", "attention_norm": "layer", "tlc_window": 8,
          "tlc_pool": "depthwise", "norm": "batch"}  # batch norms cut to a path's channels, LayerNorms in the gates
NAFNET_GRID = {"width": [4, 8], "enc_blocks": [[0, 1], [1, 2]]}


def _randomised(model, seed: int):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.uniform(0.5, 1.0, w.shape).astype(np.float32) if "variance" in w.name
                 else rng.normal(0, 0.15, w.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module", params=["unet", "nafnet"])
def elastic_net(request):
    """An elastic supernet with random weights, its candidates and its weight table."""
    from portable_deblur.models.supernet import build_supernet, spec_of, weight_table

    model, grid = (UNET, UNET_GRID) if request.param == "unet" else (NAFNET, NAFNET_GRID)
    candidates = expand(request.param, model, grid)
    net = _randomised(build_supernet(spec_of(candidates)), seed=1)
    return net, candidates, weight_table(net)


def test_sliced_widths_and_skipped_blocks_compute_what_the_extracted_candidate_does(elastic_net):
    from portable_deblur.models.choice import switches
    from portable_deblur.models.supernet import extract, set_path

    net, candidates, table = elastic_net
    x = np.random.default_rng(0).random((1, 32, 32, 3), np.float32)
    outputs = {}
    for c in candidates:
        set_path(net, c.values)
        model = extract(table, c)
        assert not switches(model)  # a plain model: nothing of the supernet in it
        assert model.count_params() <= net.count_params()
        expected = net(x).numpy()
        assert np.isfinite(expected).all()
        np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-5)
        outputs[c.id] = expected
    for key in ("width", "enc_blocks"):  # a narrower or shallower path computes something else
        a, b = [c for c in candidates if all(c.values[k] == candidates[0].values[k] for k in c.values if k != key)][:2]
        assert np.abs(outputs[a.id] - outputs[b.id]).max() > 1e-3
    assert len({v.tobytes() for v in outputs.values()}) == len(outputs)  # every path its own function


def test_a_narrower_path_trains_its_own_channels_of_a_batch_norm(elastic_net):
    from portable_deblur.models.supernet import set_path

    net, candidates, _ = elastic_net
    if candidates[0].arch != "nafnet":
        pytest.skip("the NAFNet grid has the batch norms")
    narrow = next(c for c in candidates if c.values["width"] == 4)
    norm = net.get_layer("enc1_blk0_norm1")  # 8 channels on a width-4 path, 16 at the widest
    before = norm.moving_mean.numpy().copy()
    set_path(net, narrow.values)
    net(np.random.default_rng(2).random((2, 32, 32, 3), np.float32), training=True)
    moved = np.abs(norm.moving_mean.numpy() - before) > 0
    assert moved[:8].all() and not moved[8:].any()
    norm.moving_mean.assign(before)


def test_an_extracted_candidate_exports_the_ops_and_shapes_of_a_stand_alone_one(elastic_net):
    from portable_deblur.deploy.export import to_tflite
    from portable_deblur.deploy.flatbuffer import op_counts
    from portable_deblur.models.build import build_model
    from portable_deblur.models.supernet import extract

    _, candidates, table = elastic_net
    for c in candidates[:1]:  # the narrowest, shallowest path: every layer cut, blocks skipped
        alone = _randomised(build_model(c), seed=3)
        extracted = extract(table, c)
        assert [(w.name, w.shape) for w in extracted.weights] == [(w.name, w.shape) for w in alone.weights]
        assert op_counts(to_tflite(extracted, (32, 32))) == op_counts(to_tflite(alone, (32, 32)))


def test_an_elastic_weight_table_round_trips_and_refuses_a_width_it_does_not_hold(elastic_net, tmp_path):
    from portable_deblur.models.candidate import candidate_at
    from portable_deblur.models.supernet import extract, read_table, save_table

    net, candidates, table = elastic_net
    save_table(table, tmp_path / "elastic.npz")
    again = read_table(tmp_path / "elastic.npz")
    c = candidates[0]
    x = np.random.default_rng(1).random((1, 32, 32, 3), np.float32)
    np.testing.assert_allclose(extract(again, c)(x).numpy(), extract(table, c)(x).numpy(), atol=1e-6)
    other = candidate_at(c.arch, {**c.kwargs, "width": 6}, {})
    with pytest.raises(ConfigError, match=r"holds widths \[4, 8\]; this candidate has width=6"):
        extract(again, other)


def test_an_elastic_value_a_network_cannot_take_is_a_clear_error_before_any_work(tiny_args):
    from portable_deblur.models.supernet import build_supernet, spec_of
    from portable_deblur.search.run import prepare

    with pytest.raises(ConfigError, match=r"middle_blocks cannot be shared: some values leave out block 0 of mid, "
                                          r"which changes its input's shape \(4 -> 8 channels\); give every value at least 1 block"):
        build_supernet(spec_of(expand("unet", {**UNET, "width": 4, "enc_blocks": [1]}, {"middle_blocks": [0, 1]})))
    with pytest.raises(ConfigError, match=r"enc_blocks values with one number of levels .*\[\(1, 1\), \(1, 1, 1\)\]"):
        build_supernet(spec_of(expand("unet", UNET, {"enc_blocks": [[1, 1], [1, 1, 1]]})))
    args = [a for a in tiny_args if not a.startswith(("grid.", "space="))]
    with pytest.raises(ConfigError, match="middle_blocks cannot be shared"):  # from the command line: nothing run
        prepare(args + ["space=architecture", "search.weight_sharing=supernet", "grid.middle_blocks=[0,1]",
                        "grid.enc_blocks=[[1,1]]", "grid.width=[4]", "grid.upsampler=[bilinear]",
                        "grid.activation=[relu]"])


def test_an_elastic_width_off_the_gpus_channel_slices_is_refused_before_any_work(tiny_args):
    """The GPU stores channels in slices of 4 (its op table's channel_multiple): an elastic width whose layers
    are not multiples of 4 is an error naming width, layer, channels and widths that keep it; without the GPU
    among the targets it is allowed."""
    from portable_deblur.search.run import check_channel_multiples, prepare
    from portable_deblur.config import load_config

    args = [*(a for a in tiny_args if not a.startswith("grid.")), "search.weight_sharing=supernet",
            "grid.width=[4,6]", "grid.upsampler=[bilinear]", "grid.activation=[relu]", "run.name=odd"]
    with pytest.raises(ConfigError, match=r"grid.width=6 gives layer '\w+' 6 channels \(\d+ layers in all\), not a "
                                          r"multiple of 4, which the gpu table wants .* e.g. \[4, 8\], or leave gpu out"):
        prepare(args)
    assert not (Path(load_config(args).run.root) / "odd").exists()  # nothing written
    cfg = load_config([*args, "portability.targets=[xnnpack]"])
    check_channel_multiples(cfg, [c for c in expand("unet", {**UNET, "width": 6}, {})])  # no GPU: allowed
    nafnet = load_config(args)
    check_channel_multiples(nafnet, expand("nafnet", {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1,
                                                      "dec_blocks": [1, 1]}, {}))  # gates and attention keep 4s


def test_sandwich_sampling_trains_the_extremes_every_step_deterministically_and_resumes(tiny_overrides, tiny_dataset,
                                                                                         tmp_path):
    from portable_deblur.config import load_config
    from portable_deblur.layout import RunLayout
    from portable_deblur.models.supernet import read_table
    from portable_deblur.search.weight_sharing import train_supernet
    from portable_deblur.train.paths import path_sampler

    choices = {"width": [4, 8, 6], "enc_blocks": [(1, 2), (1, 1)], "activation": ["relu", "prelu"]}
    sandwich = path_sampler(choices, 0, "sandwich", random=1)
    steps = [sandwich(i) for i in range(20)]
    assert steps == [path_sampler(choices, 0, "sandwich", random=1)(i) for i in range(20)]  # a function of the step
    assert all(s[0]["width"] == 8 and s[0]["enc_blocks"] == (1, 2) and s[1]["width"] == 4
               and s[1]["enc_blocks"] == (1, 1) and len(s) == 3 for s in steps)  # largest, smallest, one random
    assert {s[0]["activation"] for s in steps} == {"relu", "prelu"}  # op choices are drawn in each
    assert len({tuple(sorted(s[2].items())) for s in steps}) > 3

    cfg = load_config(["space=upsampling", *tiny_overrides, "model.enc_blocks=[1,1]", "model.dec_blocks=[1,1]",
                       "grid.width=[4,8]", "grid.enc_blocks=[[1,1],[1,2]]", "grid.upsampler=[bilinear]",
                       "grid.activation=[relu]", "search.path_sampling=sandwich", "search.sandwich_random=1",
                       "train.learning_rate=3e-3"])
    candidates = expand(cfg.arch, cfg.model, cfg.grid)
    once = train_supernet(cfg, tmp_path / "once", tiny_dataset, candidates, steps=4, save_every=4)
    train_supernet(cfg, tmp_path / "pieces", tiny_dataset, candidates, steps=4, save_every=2, minutes=1e-9)
    pieces = train_supernet(cfg, tmp_path / "pieces", tiny_dataset, candidates, steps=4, save_every=2)
    a, b = read_table(RunLayout.weight_table(tmp_path / "once")), read_table(RunLayout.weight_table(tmp_path / "pieces"))
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y)
    assert pieces["paths"] == once["paths"] and pieces["path_sampling"] == "sandwich"
    assert set(pieces["paths"]) == {c.id for c in candidates}  # every width and depth judged from the table


def test_a_plain_supernets_table_continues_as_an_elastic_one_at_its_width():
    """``pretrain --recipe elastic``: the shipped start (one width) loads into an elastic supernet whose widest
    width is its own, its channels reordered most important first (Once-for-All's sorting); that width's paths
    compute what they did, the narrower ones start from the most important channels."""
    from portable_deblur.models.importance import order_by_importance
    from portable_deblur.models.supernet import build_supernet, load_table, set_path, spec_of, weight_table

    grid = {"upsampler": ["depth_to_space", "bilinear"], "activation": ["prelu"]}
    plain_candidates = expand("unet", {**UNET, "width": 8, "enc_blocks": [1, 1]}, grid)
    plain = _randomised(build_supernet(spec_of(plain_candidates)), seed=4)
    elastic = build_supernet(spec_of(expand("unet", {**UNET, "enc_blocks": [1, 1]}, {**grid, "width": [4, 8]})))
    load_table(elastic, weight_table(plain))
    order_by_importance(elastic)  # what train_supernet does to a one-width start: important channels first
    x = np.random.default_rng(5).random((1, 32, 32, 3), np.float32)
    for c in plain_candidates:
        set_path(plain, c.values)
        set_path(elastic, {**c.values, "width": 8})
        np.testing.assert_allclose(elastic(x).numpy(), plain(x).numpy(), atol=1e-5)
    kernel = elastic.get_layer("enc0_blk0_conv").get_weights()[0]  # its output feeds only per-channel layers
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(0)
    assert (np.diff(norms) <= 1e-6).all()  # its filters most important (largest L1) first
