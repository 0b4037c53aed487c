"""The config's shape: ``Config`` and the search, rank, run and log sections (the stages' sections are in
``config.stages``), with the defaults every search space starts from.

The choices a field may take are registries owned by the stage that uses them (``<stage>/options.py``);
``config.validate`` checks them all at load time.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from portable_deblur.config.stages import DataConfig, MeasureConfig, OptimizeConfig, PortabilityConfig, TrainConfig


@dataclass(frozen=True)
class SearchConfig:
    """The Optuna study behind a run: how candidates are picked, what is optimised, where trials live.

    ``sampler=grid`` enumerates the grid (every point once); ``nsga2``/``tpe`` sample it and stop after
    ``n_trials`` distinct candidates. ``storage`` defaults to ``sqlite:///<run dir>/study.db``; a
    ``postgresql://user:password@host/db`` URL lets several processes on several machines share the study.
    ``rungs``/``eta``: successive halving (``search.rungs``, ``rank.promote``).
    """

    sampler: str = "grid"
    n_trials: Optional[int] = None
    population_size: int = 8  # NSGA-II generation size
    seed: int = 0
    storage: Optional[str] = None
    psnr: str = "tflite"  # objective 1 (maximise): PSNR of the deployed .tflite, or of the Keras model
    # objective 2 (minimise): "HxW_tN"; default: the largest measured resolution, the first thread count
    latency: Optional[str] = None
    # Budget: a candidate whose untrained export is slower is skipped before any training step; a trained
    # artifact that turns out slower stays off the front.
    max_latency_ms: Optional[float] = None
    heartbeat_s: float = 10.0  # a running trial silent for 3 heartbeats is taken as killed and re-run
    # Multi-fidelity (successive halving): every candidate trains rungs[0] steps; at each rung the best
    # 1/eta (non-dominated sorting on the front's objectives, crowding distance) continue from their weights
    # and optimizer state to the next rung. The learning-rate schedule spans the top rung (train.steps is set
    # to it). Empty: every candidate trains train.steps. A first rung of 0 judges every candidate's start as it
    # is -- with weight_sharing=supernet, each path of the run's one trained supernet, so a whole grid (or many
    # NSGA-II generations) is judged without training each -- and only the promoted ones fine-tune.
    rungs: List[int] = field(default_factory=list)
    eta: int = 3
    # Below the top rung a candidate is only ranked for promotion, so it is judged only by what that ranking
    # reads: its Keras model's quality on the validation frames and its own fp32 .tflite timed at the ranked
    # latency (search.latency), with the op tables' verdicts -- half the time of judging it in full (the file's
    # own quality, every measured size, the fp16 range and GPU checks), which the promoted ones get at the top
    # rung. false: every rung judged in full. A screened file's timing stops after screen_seconds of timed runs
    # (at least 3, each paired with the reference network's, as every timing): it orders networks that differ by
    # more than a few percent, and the promoted ones are timed in full and re-timed interleaved at the end.
    screen: bool = True
    screen_seconds: float = 1.5
    # A run directory of the same space trained without rungs: the report lists the candidates a rung
    # dropped that its front kept.
    compare_run: Optional[str] = None
    # supernet: one weight-sharing network for the grid (models/supernet.py), trained supernet_steps once per
    # run; then every candidate starts from its path's weights and trains train.steps (rungs as usual). It
    # holds op choices, widths (each layer's leading channels) and block counts (a level's first blocks).
    # path_sampling (train/paths.py): fair or uniform train one path a step; sandwich trains the largest, the
    # smallest and sandwich_random uniform paths a step, the others learning from the largest's output.
    # none: every candidate trains on its own.
    weight_sharing: str = "none"
    supernet_steps: int = 3000
    path_sampling: str = "fair"
    sandwich_random: int = 2


@dataclass(frozen=True)
class RankConfig:
    """How sure a comparison must be: the level of every interval the front, its ties and the
    recommendation are judged by (quality: paired t over the validation frames; latency: order statistics of
    the paired ratios, ``confidence.py``). A difference inside its interval is a tie."""

    confidence: float = 0.95
    # A PSNR difference counts only when its whole interval clears this many dB. The interval covers which
    # validation frames were drawn, not which training run made the weights or which camera took the frames:
    # differences of a few hundredths of a dB between the default networks did not carry over to real GoPro /
    # REDS frames nor to another training seed (figures: docs/confidence.md). 0: frame noise alone decides.
    quality_margin_db: float = 0.05
    # A latency ratio counts only when its whole interval lies beyond 1 +- this share: on a phone, another
    # runtime or another host of this class, a difference of a percent or two between two networks of one
    # family does not hold (the same files re-timed in another window moved against each other by about that).
    # Tied networks are then told apart by portability (the recommendation ships the one fewer targets reject).
    latency_margin: float = 0.02
    # Frame resamples behind the ranking's stability (how often each candidate stays on the front, is best).
    resamples: int = 200


@dataclass(frozen=True)
class RunConfig:
    """Where results go; re-running with the same name resumes: finished trials are not re-run."""

    name: Optional[str] = None
    root: str = "experiments/runs"
    overwrite: bool = False


@dataclass(frozen=True)
class LogConfig:
    """What the console shows: ``warning`` hides TensorFlow's start-up lines and INFO logs; ``debug`` (or
    ``-v``) shows everything. Not part of a run's identity: changing it never blocks a resume."""

    level: str = "warning"


@dataclass(frozen=True)
class Config:
    """A whole search: the fixed builder arguments (``model``), the searched ones (``grid``) and stages."""

    space: str = "upsampling"
    arch: str = "unet"
    model: Dict[str, Any] = field(default_factory=dict)
    grid: Dict[str, List[Any]] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    portability: PortabilityConfig = field(default_factory=PortabilityConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    rank: RankConfig = field(default_factory=RankConfig)
    run: RunConfig = field(default_factory=RunConfig)
    log: LogConfig = field(default_factory=LogConfig)
