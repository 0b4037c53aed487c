"""The estimates a result row compares by, typed until the study stores them: an artifact's quality on every
validation frame (``FrameScores``: what paired quality intervals are computed from), its latency as a paired
ratio to the run's reference network in the run's unit (``PairedLatency``), and the A/B timings against
front points whose intervals overlapped (``Duel``). ``records.ResultRow`` holds them."""
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from portable_deblur.confidence import Interval


@dataclass(frozen=True)
class FrameScores:
    """An artifact's PSNR and SSIM on every validation frame, per source (``blurry``: the input itself,
    ``keras``, ``tflite``, ``gpu``), with each frame's name, camera pipeline and whether it counts towards
    the ranked figure. Two artifacts of one run share the frames, so their difference is paired."""

    names: Tuple[str, ...] = ()
    pipelines: Tuple[str, ...] = ()
    ranked: Tuple[bool, ...] = ()
    psnr: Dict[str, Tuple[float, ...]] = field(default_factory=dict)
    ssim: Dict[str, Tuple[float, ...]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "FrameScores":
        return cls(tuple(data.get("names", ())), tuple(data.get("pipelines", ())), tuple(data.get("ranked", ())),
                   {k: tuple(v) for k, v in data.get("psnr", {}).items()},
                   {k: tuple(v) for k, v in data.get("ssim", {}).items()})

    def with_source(self, source: str, psnr: Sequence[float], ssim: Sequence[float]) -> "FrameScores":
        """These scores plus ``source``'s (the same frames, in the same order)."""
        if len(psnr) != len(self.names):
            raise ValueError(f"{source}: {len(psnr)} frame scores for {len(self.names)} frames")
        return replace(self, psnr={**self.psnr, source: tuple(map(float, psnr))},
                       ssim={**self.ssim, source: tuple(map(float, ssim))})

    def values(self, source: str, metric: str = "psnr", pipeline: Optional[str] = None) -> List[float]:
        """``source``'s per-frame figures: of the ranked frames, or of ``pipeline``'s frames."""
        scores = getattr(self, metric).get(source, ())
        keep = (self.ranked if pipeline is None else tuple(p == pipeline for p in self.pipelines))
        return [v for v, k in zip(scores, keep) if k]

    def rows(self, artifact: str) -> List[Dict[str, Any]]:
        """One ``frames.csv`` row per frame."""
        return [{"artifact": artifact, "frame": name, "pipeline": pipeline, "ranked": ranked,
                 **{f"psnr_{s}": v[i] for s, v in self.psnr.items()},
                 **{f"ssim_{s}": v[i] for s, v in self.ssim.items()}}
                for i, (name, pipeline, ranked) in enumerate(zip(self.names, self.pipelines, self.ranked))]


@dataclass(frozen=True)
class PairedLatency:
    """The latency the front ranks by, at one latency key: the median ratio of this file's runs to the
    reference network's runs timed in alternation with them (both slowed alike by a slow window of the
    machine), with its interval, times the run's unit (the reference's milliseconds as the ratios were taken:
    its median in the final re-timing; at the run's start, until that exists)."""

    ratio: float
    ratio_low: float
    ratio_high: float
    unit_ms: float
    pairs: int
    level: float = 0.95

    @property
    def ms(self) -> Interval:
        return Interval(self.ratio, self.ratio_low, self.ratio_high, self.level).scaled(self.unit_ms)


@dataclass(frozen=True)
class Duel:
    """Two front points timed again A/B/A/B in one process: this file's time over ``other``'s, the median
    ratio of the pairs with its interval, and the verdict (``faster``, ``slower`` or ``tied``: within
    ``rank.latency_margin``, as the front judges it)."""

    other: str
    ratio: float
    low: float
    high: float
    pairs: int
    verdict: str
    seconds: float = 0.0
