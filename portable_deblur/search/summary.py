"""What a search prints: one line per finished trial where no progress bar shows, and the closing table of
every artifact with its intervals, the front and tie groups marked, a legend for the marks, and the
recommendation."""
import time
from typing import Sequence

from portable_deblur.config import Config
from portable_deblur.rank import Objectives
from portable_deblur.records import ResultRow, equally_trained
from portable_deblur.search.jobs import Outcome


class TrialLog:
    """One line per finished trial where no progress bar shows (stdout is no terminal: CI, nohup, batch
    jobs): id, PSNR and gain, latency, elapsed and estimated time left."""

    def __init__(self, cfg: Config, total: int, done: int, enabled: bool):
        self.spec, self.total, self.done, self.enabled = Objectives.of(cfg), total, done, enabled
        self.start, self.timed = time.perf_counter(), 0

    def __call__(self, outcome: Outcome) -> Outcome:
        self.done, self.timed = self.done + 1, self.timed + 1
        if self.enabled and outcome.rows:
            r = outcome.rows[0]
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.timed * max(self.total - self.done, 0)
            lat = r.best_ms(self.spec.latency)
            screened = " (Keras model, screened)" if r.screened else ""
            result = (f"PSNR {r.ranked_psnr():.2f} dB{screened} ({r.psnr_gain:+.2f} over blurry{_pipeline_gains(r)}), "
                      f"{lat:.1f} ms @{self.spec.latency}" if r.status == "ok" else f"{r.status}: {r.error[:100]}")
            print(f"[{self.done}/{self.total}] {r.id}: {result}; elapsed {clock_text(elapsed)}, "
                  f"~{clock_text(left)} left", flush=True)
        return outcome


def _pipeline_gains(r: ResultRow) -> str:
    """``; srgb +0.21, linear +0.35`` -- the gain in each camera pipeline's validation (embedded data)."""
    return "".join(f"; {name} {r.pipeline_gain(name):+.2f}" for name in r.pipelines)


def clock_text(seconds: float) -> str:
    """``7:05`` (minutes:seconds)."""
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def summary(rows: Sequence[ResultRow], decision, spec: Objectives) -> str:
    """A plain-text table of every candidate with its gain and latency intervals, front and tie groups marked,
    a legend for the marks, then the recommendation; when rows were trained unequally (rungs), how long each
    was: only the rows trained most compete for the front."""
    front_ids = {r.id for r in decision.front}
    pipelines = list(dict.fromkeys(name for r in rows for name in r.pipelines))
    unequal = len({r.training for r in rows if r.status == "ok"}) > 1
    pct = f"{100 * spec.level:g} %"
    lines = [f"{'':4}{'candidate':52} {'PSNR':>7} {'gain [' + pct + ']':>22} " + "".join(f"{n:>7}" for n in pipelines)
             + f" {'ms@' + spec.latency + ' [' + pct + ']':>26}  " + ("trained  " if unequal else "") + "status"]
    for r in rows:
        mark = ("*" if r.id in front_ids else " ") + (decision.group_of(r.id) or " ")
        gain = _gain(r, spec) if r.status == "ok" else ""
        ms = r.latency_interval(spec.latency).text(".1f") if spec.latency in r.latency else ""
        gains = "".join(f"{r.pipeline_gain(name):+7.2f}" for name in pipelines)
        trained = f"{r.training_label}  " if unequal else ""
        lines.append(f"{mark:4}{r.id:52} {r.ranked_psnr():7.2f} {gain:>22} {gains} {ms:>26}  {trained}"
                     f"{'screened' if r.screened else r.status} {r.error[:70]}")
    equal = equally_trained([r for r in rows if r.status == "ok"])
    if equal:
        lines.append(f"compared at equal training: {len(equal)} artifacts trained {equal[0].training_label}"
                     + (f"; {sum(r.status == 'ok' for r in rows) - len(equal)} trained less are left out of the "
                        "front" if unequal else ""))
    lines.append(f"marks: * on the front (no other artifact is as good within noise on every objective and better "
                 f"beyond it on one); A, B, ...: tie groups, indistinguishable on every objective at {pct}; "
                 f"[low, high]: {pct} intervals (gain: paired t over the validation frames; ms: order statistics of "
                 f"the ratios to the reference network timed in alternation)")
    lines += ["", *decision.lines]
    return "\n".join(lines)


def _gain(r: ResultRow, spec: Objectives) -> str:
    """``+0.37 [+0.33, +0.41]``: the gain over the blurry input, paired over the frames."""
    from portable_deblur.rank import gain_interval

    d = gain_interval(r, spec)
    return f"{d.estimate:+.2f} [{d.low:+.2f}, {d.high:+.2f}]" if r.frames is not None else f"{d.estimate:+.2f}"
