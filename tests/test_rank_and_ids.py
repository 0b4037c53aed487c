"""Pure functions with hand-made inputs: Pareto front (incl. ties) and candidate ids."""
import pytest

from portable_deblur.models.candidate import expand, make_id
from portable_deblur.rank import dominates, pareto_front
from portable_deblur.registry import ConfigError


def test_pareto_front_psnr_up_latency_down():
    points = [(30.0, 10.0), (31.0, 20.0), (29.0, 15.0), (31.0, 25.0), (32.0, 40.0), (28.0, 5.0)]
    # (29, 15) is beaten by (30, 10); (31, 25) by (31, 20).
    assert pareto_front(points) == [0, 1, 4, 5]


def test_pareto_ties_are_all_kept_and_equal_psnr_prefers_faster():
    assert pareto_front([(30.0, 10.0), (30.0, 10.0), (30.0, 12.0)]) == [0, 1]
    assert pareto_front([(30.0, 10.0), (29.0, 10.0)]) == [0]


def test_pareto_with_a_third_objective_keeps_the_more_portable_point():
    # b is slower and no better in PSNR, but keeps more MACs on the accelerator: not dominated.
    points = [(30.0, 10.0, 0.5), (30.0, 12.0, 1.0), (29.0, 12.0, 0.9)]
    assert pareto_front(points, maximize=(True, False, True)) == [0, 1]


def test_pareto_edge_cases():
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0)]) == [0]
    assert dominates((2, 1), (1, 1), (True, False)) and not dominates((1, 1), (1, 1), (True, False))
    assert pareto_front([(1.0, 1.0), (2.0, 2.0)], maximize=(False, False)) == [0]


def test_ids_are_sorted_readable_and_filesystem_safe():
    assert make_id("unet", {"upsampler": "bilinear", "activation": "relu"}) == \
        "unet__activation-relu__upsampler-bilinear"
    assert make_id("unet", {"enc_blocks": (1, 1, 10), "residual": False}) == \
        "unet__enc_blocks-1.1.10__residual-false"
    assert make_id("unet", {"name": "a/b c"}) == "unet__name-a-b-c"


def test_expand_grid_and_fixed_arguments():
    cands = expand("unet", {"width": 8}, {"activation": ["relu", "prelu"], "enc_blocks": [[1, 1], [2, 2]]})
    assert len(cands) == 4
    assert all(c.kwargs["width"] == 8 for c in cands)
    assert cands[0].values == {"activation": "relu", "enc_blocks": (1, 1)}
    assert expand("unet", {"width": 8}, {}) [0].id == "unet"


def test_expand_rejects_bad_grids():
    with pytest.raises(ConfigError, match=r"grid.activation must be a non-empty list; got 'relu'|grid.activation must be a non-empty list of values; got 'relu'"):
        expand("unet", {}, {"activation": "relu"})
    with pytest.raises(ConfigError, match="duplicate"):
        expand("unet", {}, {"activation": ["relu", "relu"]})


def _row(cid, psnr, ms, gpu_fraction, violations=()):
    from portable_deblur.records import ResultRow

    return ResultRow(id=cid, arch="unet", values={"upsampler": cid}, status="ok", psnr_tflite=psnr,
                     latency={"256x256_t2": {"median_ms": ms}}, violations=list(violations),
                     portability={"gpu": {"accelerator_mac_fraction": gpu_fraction}})


def test_front_rows_uses_portability_as_constraint_and_objective():
    from portable_deblur.rank import Objectives, front_rows

    rows = [_row("a", 30.0, 10.0, 0.5), _row("b", 30.0, 12.0, 1.0), _row("c", 31.0, 5.0, 1.0, ["gpu"])]
    ok, front = front_rows(rows, Objectives("256x256_t2"))
    assert len(ok) == 3 and [r.id for r in front] == ["a"]  # c violates a required target: never on the front
    _, front = front_rows(rows, Objectives("256x256_t2", target="gpu"))
    assert [r.id for r in front] == ["a", "b"]


def test_latency_budget_is_a_constraint_on_the_front():
    from portable_deblur.rank import Objectives, front_rows

    rows = [_row("fast", 29.0, 5.0, 1.0), _row("slow", 31.0, 20.0, 1.0)]
    spec = Objectives("256x256_t2", max_latency_ms=10.0)
    assert spec.constraints(rows[1]) == {"required_targets_missed": 0.0, "latency_over_budget_ms": 10.0}
    assert spec.constraints(rows[0])["latency_over_budget_ms"] == -5.0
    assert [r.id for r in front_rows(rows, spec)[1]] == ["fast"]
    assert [r.id for r in front_rows(rows, Objectives("256x256_t2"))[1]] == ["fast", "slow"]


def test_latency_table_gives_each_thread_series_its_own_exponent():
    from portable_deblur.report.plots import latency_table
    from portable_deblur.records import ResultRow

    def lat(ms):
        return {"median_ms": ms, "p90_ms": ms, "cv": 0.0, "peak_rss_mb": 1.0}

    row = ResultRow(id="a", arch="unet", values={}, status="ok", latency={
        "100x100_t1": lat(1.0), "200x200_t1": lat(4.0),     # 4x pixels, 4x time: exponent 1
        "100x100_t2": lat(1.0), "200x200_t2": lat(2.0)})    # 4x pixels, 2x time: exponent 0.5
    table = latency_table([row])
    assert {(t["threads"], round(t["scaling_exponent"], 6)) for t in table} == {(1, 1.0), (2, 0.5)}
    assert len(table) == 4
