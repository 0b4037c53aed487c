"""How sure a comparison is: intervals on hand-built frames with known answers, the noise-aware front on
hand-built points, paired latency against a simulated slow window, and the recommendation built on them."""
import numpy as np
import pytest
from scipy import stats

from portable_deblur.confidence import (Interval, median_interval, mean_interval, paired_difference,
                                        resampled_frames, verdict)
from portable_deblur.rank import Objectives, noisy_front, tie_groups
from portable_deblur.estimates import FrameScores, PairedLatency
from portable_deblur.records import ResultRow
from portable_deblur.registry import ConfigError


def test_mean_interval_is_students_t_worked_by_hand():
    # mean 2, sd 1 (ddof 1) over 4 values: half width t(0.975, 3) * 1 / 2 = 3.182446 / 2
    d = mean_interval([1.0, 2.0, 3.0, 2.0 + 0.0], 0.95)
    sd = np.std([1.0, 2.0, 3.0, 2.0], ddof=1)
    assert d.estimate == 2.0
    assert d.half_width == pytest.approx(3.182446 * sd / 2, rel=1e-6)
    assert mean_interval([5.0, 5.0, 5.0]).low == mean_interval([5.0, 5.0, 5.0]).high == 5.0  # no spread
    assert mean_interval([1.0]).low == -np.inf  # one frame says nothing about the spread


def test_paired_difference_cancels_frame_difficulty():
    """Frames differ by 10 dB in difficulty; b is a constant 0.05 dB better on each: paired, that is exact."""
    hard_and_easy = np.array([20.0, 30.0, 25.0, 35.0, 22.0, 28.0])
    a, b = hard_and_easy, hard_and_easy + 0.05
    d = paired_difference(b, a)
    assert d.estimate == pytest.approx(0.05) and d.half_width == pytest.approx(0.0, abs=1e-12)
    assert verdict(d) == 1 and verdict(paired_difference(a, b)) == -1
    unpaired = stats.ttest_ind(b, a)  # the same data unpaired: the 10 dB spread swamps the 0.05 dB
    assert unpaired.pvalue > 0.9
    noisy = paired_difference(hard_and_easy + [0.1, -0.1, 0.1, -0.1, 0.1, -0.1], hard_and_easy)
    assert noisy.covers(0.0) and verdict(noisy) == 0  # a difference inside its interval is a tie
    with pytest.raises(ValueError, match="same frames"):
        paired_difference([1.0, 2.0], [1.0])


def test_median_interval_uses_the_binomial_order_statistics():
    x = np.arange(1.0, 21.0)  # n = 20: the 95 % interval is x(6)..x(15)
    m = median_interval(x[::-1], 0.95)
    assert (m.estimate, m.low, m.high) == (10.5, 6.0, 15.0)
    assert stats.binom.cdf(5, 20, 0.5) <= 0.025 < stats.binom.cdf(6, 20, 0.5)
    few = median_interval([3.0, 1.0, 2.0], 0.95)  # too few runs for the level: their whole range
    assert (few.low, few.high) == (1.0, 3.0)


def test_interval_scaling_and_text():
    i = Interval(2.0, 1.9, 2.2).scaled(5.0)
    assert (i.estimate, i.low, i.high) == (10.0, 9.5, 11.0) and i.text(".1f", " ms") == "10.0 ms [9.5, 11.0]"


def test_resamples_are_the_same_for_every_artifact():
    first, again = list(resampled_frames(24, 5, seed=3)), list(resampled_frames(24, 5, seed=3))
    assert all(np.array_equal(a, b) for a, b in zip(first, again)) and all(len(a) == 24 for a in first)


# ---- the noise-aware front ------------------------------------------------------------------------------------

def _matrix(n, better):
    """Verdicts with (i, j) in ``better`` meaning i beats j beyond noise; everything else tied."""
    m = [[0] * n for _ in range(n)]
    for i, j in better:
        m[i][j], m[j][i] = 1, -1
    return m


def test_noisy_front_two_objectives():
    # 0 and 1 tied in quality, 0 faster beyond noise: 1 leaves. 2 is better in quality than both but slower.
    quality = _matrix(3, [(2, 0), (2, 1)])
    speed = _matrix(3, [(0, 1), (0, 2), (1, 2)])
    assert noisy_front([quality, speed]) == [0, 2]
    # every difference inside its interval: nothing leaves, and all three are one tie group
    assert noisy_front([_matrix(3, []), _matrix(3, [])]) == [0, 1, 2]
    assert tie_groups([_matrix(3, []), _matrix(3, [])]) == [[0, 1, 2]]


def test_points_that_beat_each_other_in_a_circle_stay_together_unless_beaten_from_outside():
    # 0 beats 1 on speed, 1 beats 2 on quality, 2 beats 0 on the third objective; everything else tied
    speed, quality, share = _matrix(4, [(0, 1)]), _matrix(4, [(1, 2)]), _matrix(4, [(2, 0)])
    assert noisy_front([speed, quality, share]) == [0, 1, 2, 3]  # a circle nobody beats: kept whole
    speed = _matrix(4, [(0, 1), (3, 2)])  # 3 beats a member of the circle from outside it
    assert noisy_front([speed, quality, share]) == [3]


def test_noisy_front_three_objectives_and_ties_that_do_not_chain():
    # 0 beats 1 on speed; 1 keeps more MACs on the accelerator: 1 stays. 2 is tied with 0 on quality and
    # speed, worse on the accelerator share than 0: 2 leaves.
    quality, speed, share = _matrix(3, []), _matrix(3, [(0, 1), (2, 1)]), _matrix(3, [(1, 0), (1, 2), (0, 2)])
    assert noisy_front([quality, speed, share]) == [0, 1]
    # a ~ b and b ~ c on every objective, but a beats c on speed: c does not join a's group
    speed = _matrix(3, [(0, 2)])
    assert tie_groups([_matrix(3, []), speed]) == [[0, 1]]
    assert tie_groups([_matrix(3, []), speed], order=[1, 0, 2]) == [[1, 0, 2]]


# ---- the front and the recommendation on rows --------------------------------------------------------------

def _row(rid, gains, ratio, low, high, unit=10.0):
    frames = FrameScores(tuple(f"f{i}" for i in range(len(gains))), ("srgb",) * len(gains), (True,) * len(gains),
                         {"blurry": (24.0,) * len(gains), "tflite": tuple(24.0 + g for g in gains)})
    return ResultRow(id=rid, arch="unet", values={"upsampler": rid}, status="ok",
                     psnr_tflite=24.0 + float(np.mean(gains)), psnr_blurry=24.0,
                     latency={"256x256_t2": {"median_ms": ratio * unit}}, frames=frames,
                     paired={"256x256_t2": PairedLatency(ratio, low, high, unit, 20)})


def test_tied_quality_leaves_the_decision_to_latency():
    from portable_deblur.decision import decide

    wobble = [0.01, -0.01, 0.02, -0.02, 0.0, 0.01, -0.01, 0.0]
    base = [0.3, 0.5, 0.2, 0.6, 0.4, 0.35, 0.45, 0.3]  # frame to frame, as real frames differ
    rows = [_row("fast", base, 1.00, 0.98, 1.02),
            _row("twin", [b + w for b, w in zip(base, wobble)], 1.01, 0.99, 1.03),
            _row("slow", [b - w for b, w in zip(base, wobble)], 1.30, 1.27, 1.33)]
    d = decide(rows, Objectives("256x256_t2"), resamples=50)
    assert [r.id for r in d.front] == ["fast", "twin"]  # slow is tied in quality and slower beyond noise
    assert d.ties == (("fast", "twin"),) and d.group_of("slow") == ""
    assert d.lines[0].startswith("quality: the 3 are tied")
    assert "fastest: fast 10.0 ms [9.8, 10.2]" in d.lines[1] and "tied with twin" in d.lines[1]
    assert d.lines[2].startswith("ship: fast: tied on every objective (95 %) with twin")  # fewest fall-backs, fastest
    shares = {s["artifact"]: s for s in d.stability}
    assert shares["fast"]["on_front_share"] == 1.0 and shares["slow"]["best_quality_share"] < 1.0


def test_a_real_quality_difference_is_named_with_its_interval():
    from portable_deblur.decision import decide

    base = [0.3, 0.5, 0.2, 0.6, 0.4, 0.35, 0.45, 0.3]
    rows = [_row("wide", [b + 0.2 for b in base], 1.5, 1.45, 1.55), _row("narrow", base, 1.0, 0.98, 1.02)]
    d = decide(rows, Objectives("256x256_t2"), resamples=20)
    assert [r.id for r in d.front] == ["narrow", "wide"] and d.ties == ()
    assert "wide is best, +0.200 dB [+0.200, +0.200] over narrow" in d.lines[0]
    assert d.lines[2].startswith("ship: a trade-off") and "+50 % latency" in d.lines[2]


# ---- paired latency against a slow window -------------------------------------------------------------------

def test_a_paired_ratio_cancels_a_slow_window_the_run_queue_filter_cannot_see():
    """Runs 6-15 of 20 take 1.6x as long with no run-queue wait at all (the machine is slow, not busy): the
    file's median moves with the window; its ratio to the reference timed beside it does not."""
    from portable_deblur.deploy.paired import paired_ratios

    clock = {"run": 0}

    def window() -> float:
        return 1.6 if 10 <= clock["run"] < 32 else 1.0

    def runner(base_ms):
        def run():
            clock["run"] += 1
            return base_ms * window(), 0.0, base_ms * window()  # (wall ms, run-queue wait share, CPU ms)
        return run

    pairs = paired_ratios(runner(20.0), runner(5.0), pairs=20)
    assert pairs.total == pairs.clean == 20
    assert pairs.a_median > 20.0 * 1.1  # the lone median is off by the window
    assert pairs.ratio.estimate == pytest.approx(4.0) and pairs.ratio.covers(4.0)
    assert pairs.ratio.low == pytest.approx(4.0) and pairs.ratio.high == pytest.approx(4.0)


def test_pairs_with_a_queued_run_on_either_side_are_left_out():
    from portable_deblur.deploy.paired import pairs_of

    quiet, queued = (20.0, 0.0, 20.0), (40.0, 0.5, 20.0)
    ref, ref_queued = (5.0, 0.0, 5.0), (10.0, 0.5, 5.0)
    samples = [(quiet, ref)] * 6 + [(queued, ref)] * 3 + [(quiet, ref_queued)] * 3
    p = pairs_of(samples, 0.95)
    assert (p.clean, p.total, p.ratio.estimate) == (6, 12, 4.0)


def test_a_duel_stops_once_ordered_over_enough_undisturbed_pairs():
    from portable_deblur.deploy.paired import ordered, paired_ratios

    steady = lambda ms, wait=0.0: (lambda: (ms, wait, ms))  # noqa: E731
    done = paired_ratios(steady(9.0), steady(10.0), pairs=10 ** 6, level=0.95, check_every=10, stop=ordered)
    assert done.total == 10 and done.ratio.high < 1.0
    # under load: every run queued, so the three least disturbed pairs stand in; their range is no verdict
    queued = paired_ratios(steady(9.0, 0.5), steady(10.0, 0.5), pairs=10 ** 6, max_seconds=0.5, stop=ordered)
    assert queued.clean == 0 and queued.total == 27 and not ordered(queued)  # ran out its 0.5 s (19 ms a pair)
    tied = paired_ratios(steady(10.0), steady(10.0), pairs=10 ** 6, max_seconds=0.5, stop=ordered)
    assert tied.ratio.covers(1.0) and tied.total == 26  # the first pair past 0.5 s of timed runs (20 ms a pair)


# ---- configuration ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", ["1.5", "0", "0.3", "95"])
def test_a_bad_confidence_level_is_a_clear_error(level, tiny_overrides):
    from portable_deblur.config import load_config

    with pytest.raises(ConfigError, match=r"rank.confidence must be a confidence level between 0.5 and 0.999 "
                                          rf"\(e.g. 0.95 for 95 % intervals\); got {level}"):
        load_config(["space=upsampling", *tiny_overrides, f"rank.confidence={level}"])
    with pytest.raises(ConfigError, match=r"invalid config 'rank.confidence'"):
        load_config(["space=upsampling", *tiny_overrides, "rank.confidence=high"])


def test_the_median_rank_equals_the_exact_binomial_quantile_even_for_a_long_duel():
    """A duel of tiny files reaches tens of thousands of pairs, and its stopping rule reads the median's
    interval every 10 pairs: the rank comes from a short float sum, equal to the exact integer one."""
    from portable_deblur.confidence import _median_rank

    def exact(n, alpha):  # smallest k with P(Binomial(n, 1/2) <= k) >= alpha, in integers
        total, term, k = 0, 1, 0
        while True:
            total += term
            if total / 2 ** n >= alpha:
                return k
            term, k = term * (n - k) // (k + 1), k + 1

    for n in (1, 5, 6, 30, 999, 20000):
        for level in (0.9, 0.95, 0.99):
            assert _median_rank(n, (1 - level) / 2) == exact(n, (1 - level) / 2), (n, level)
