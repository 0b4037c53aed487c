"""The config's shape: one frozen dataclass per stage, with the defaults every search space starts from.

The choices a field may take are registries owned by the stage that uses them (``<stage>/options.py``);
``config.validate`` checks them all at load time.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple



@dataclass(frozen=True)
class DataConfig:
    """Where training/validation pairs come from (``data.SOURCES``)."""

    source: str = "embedded"
    root: Optional[str] = None
    # Embedded source. Training content: these photographs (natural colour photos that installed packages
    # ship, data/content.py) and dead-leaves images made from the seed, every crop blurred afresh
    # (data/scenes.py). Validation: whole frames of other photographs, held out by photo, in both pipelines.
    train_images: List[str] = field(default_factory=lambda: ["astronaut", "rocket", "china", "flower", "grace_hopper"])
    val_images: List[str] = field(default_factory=lambda: ["chelsea", "coffee", "stereo_motorcycle"])
    # Photos are used at native resolution, centre-cropped (never shrunk) to at most max_side pixels.
    max_side: int = 768
    leaves_share: float = 0.5  # fraction of training crops cut from dead-leaves frames (the rest: photos)
    leaves_size: int = 256  # side of a dead-leaves frame
    leaves_reuse: int = 32  # consecutive crops that share one dead-leaves frame (~0.1 s to make)
    # The strongest depth-of-field blur of the leaves behind a frame's focus depth (Gaussian sigma, pixels;
    # each frame draws up to it): what a network learns to keep as the scene's own softness.
    leaves_defocus: float = 3.0
    # Each rendered training crop is used this many times on average (random flips/rotations, spread over
    # ~4x as many steps) while new ones keep coming: rendering every crop afresh (1) doubled the default
    # U-Net's step on 2 cores (data/scenes.py; benchmarks/embedded_data.py).
    render_reuse: int = 8
    # More content from the same photographs: each use of a crop in a random order of its colour channels.
    colour_shuffle: bool = False
    # Validation frames per photo and camera pipeline, each its own shake path, the lengths spread evenly over
    # blur_length. One network's upsamplers differ frame to frame by 0.03-0.05 dB (sd): 4 (24 frames) rank them
    # to ~0.01 dB. Two starts differ by 0.37 dB a frame: at 2 (12 frames) a 134-CPU-minute start ranked 0.01 dB
    # below a 31-minute one that 8 (48 frames) puts 0.08-0.13 dB below it, so the pretraining judges on 8.
    val_blurs_per_image: int = 4
    # Path length in native pixels that a pixel travels during the exposure, averaged over the frame (drawn
    # log-uniformly): about the 5-35 px of hand-held 720p frames. Rotation and zoom add up to these fractions
    # of the translation at the frame corners, so the blur varies across the frame (blur.py).
    blur_length: List[float] = field(default_factory=lambda: [5.0, 35.0])
    rotation: float = 0.5
    zoom: float = 0.1
    # The camera pipeline training pairs are blurred in: srgb (GoPro's standard `blur` set), linear (light
    # integrated through a camera response, as REDS and real single exposures), or mixed (either, per crop).
    # Measured with the default network, 2000 steps, gains on the validation's srgb / linear frames: srgb
    # +0.18 / +0.09 dB, linear -0.91 / +0.24, mixed half linear -0.04 / +0.31, mixed a quarter linear
    # +0.02 / +0.23: the one that gains in both pipelines, much more in linear light than srgb alone does.
    blur_space: str = "mixed"
    linear_share: float = 0.25  # mixed: the share of training crops averaged in linear light
    # Exponent of the gamma camera response of `linear`: 3.0 makes rendered pairs brighten as REDS's do.
    camera_gamma: float = 3.0
    noise_sigma: float = 0.01
    seed: int = 0
    train_split: Optional[str] = None
    val_split: Optional[str] = None
    max_train_pairs: int = 0
    max_val_pairs: int = 0
    frame_stride: int = 1


@dataclass(frozen=True)
class TrainConfig:
    """Fixed-budget training: Adam (AdamW with ``weight_decay``), cosine or exponential decay, seeded."""

    steps: int = 800
    batch_size: int = 8
    crop: int = 64
    crops_per_pair: int = 1  # crops cut from one decoded pair per batch (4+ keeps GPUs fed from PNG folders)
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # cosine: down to learning_rate * final_lr_ratio; exponential: the MediaTek paper's
    final_lr_ratio: float = 0.01
    # cosine only: a linear warm-up from 0 over these steps keeps the first Adam steps from knocking a network
    # that starts as the identity far off it (short laptop schedules never recover from that).
    warmup_steps: int = 0
    decay_rate: float = 0.98  # exponential: multiply by decay_rate every decay_steps
    decay_steps: int = 5000
    beta_2: float = 0.999  # NAFNet / the thesis use 0.9
    weight_decay: float = 0.0  # > 0: AdamW (the thesis: 1e-3)
    loss: str = "l1"  # l1 | charbonnier | psnr
    fft_weight: float = 0.0  # > 0 adds fft_weight * the FFT L1 term to the loss (the thesis used 0.01)
    seed: int = 0
    log_every: int = 50
    # XLA: ~15 % faster steps for conv/transpose/depth_to_space U-Nets on CPU, but 1.5x *slower* for bilinear
    # (its ResizeBilinearGrad), and TF refuses op determinism with XLA's MaxPool gradient. Off by default.
    jit_compile: bool = False
    # "mirrored": build and train under tf.distribute.MirroredStrategy (every local GPU; one CPU otherwise).
    distribute: str = "none"
    # Keras mixed precision (float32 variables, 16-bit compute, loss scaling for fp16); the trained weights are
    # copied into a float32 model before evaluation and export, so the .tflite files do not change. auto:
    # mixed_bfloat16 on a CPU-only machine that computes bfloat16 natively, else float32 (measured on an AMD
    # EPYC with avx512_bf16: the default U-Net's step 36.6 vs 52.3 ms, train.fit 42.6 vs 59.0 ms, validation
    # gain +0.248 vs +0.240 dB after the default recipe; benchmarks/training_throughput.py).
    precision: str = "auto"
    # Where each candidate's weights start: None (its initialiser), "pretrained" (its path of the supernet the
    # package ships, models/pretrained.py), a weight table (.npz, e.g. a run's supernet/weights.npz), or a run
    # directory, candidate folder or .keras file of the same architecture.
    init: Optional[str] = None


# Named resolution sets, [height, width]; "paper" is the MediaTek paper's Figure 4 (360p .. 1080p).
RESOLUTION_SETS = {
    "paper": [[360, 640], [720, 1280], [900, 1600], [1080, 1920]],
    "phone": [[256, 256], [720, 1280]],
}


@dataclass(frozen=True)
class MeasureConfig:
    """Latency measurement; resolutions are [height, width], each timed at every thread count.

    ``resolution_set`` appends a named set (``RESOLUTION_SETS``). A size that is not a multiple of 2**depth
    is exported padded up to one (recorded as ``padded_to``). ``backend=adb`` times on a phone over USB
    with TFLite's ``benchmark_model`` instead of the local LiteRT interpreter.
    """

    # 256x256 is the NTIRE smartphone track's size; 1280x720 is what an app deblurs, and the front ranks by the
    # largest measured size (search.latency) because latency does not scale alike with pixels for every op.
    resolutions: List[List[int]] = field(default_factory=lambda: [[256, 256], [720, 1280]])
    resolution_set: Optional[str] = None
    threads: List[int] = field(default_factory=lambda: [2])
    warmup: int = 3
    runs: int = 20
    max_seconds: float = 5.0  # a slow artifact (16x8: ~1 s a run here) stops timing after this (>= 3 runs)
    # Runs whose threads queued for a CPU (another process had it) are left out; while fewer than half a
    # batch are undisturbed, up to this many more batches follow a pause, then the row is flagged.
    retries: int = 3
    # The final re-timing the front ranks by: every competing file, each run paired with one of the reference
    # network, round-robin in one process, this many rounds of 10 pairs (search/settle.py; 0: rank by each
    # trial's own pairs). 3 rounds (30 pairs a file) narrow the ratio's interval to its order statistics 10
    # and 21 of 30; 15 pairs a file left intervals 10-20 % wide on a noisy 2-core host.
    interleaved_rounds: int = 3
    # The run's reference network is timed alone this many times at the start, each in a fresh process; the
    # fastest median is the run's latency unit, so one busy moment at the start does not set it.
    reference_repeats: int = 3
    # Also run every float artifact on LiteRT's GPU accelerator (needs a Vulkan adapter, deploy/gpu.py) and
    # keep its validation PSNR (psnr_gpu): what a phone's GPU outputs, in the accelerator's default precision.
    # Slow on software adapters (SwiftShader: ~7 s per 512x752 frame of the default U-Net), so off by default.
    gpu_psnr: bool = False
    backend: str = "local"
    adb_binary: str = "/data/local/tmp/benchmark_model"
    adb_delegate: str = "none"
    adb_serial: Optional[str] = None

    @property
    def shapes(self) -> List[Tuple[int, int]]:
        extra = RESOLUTION_SETS[self.resolution_set] if self.resolution_set else []
        return list(dict.fromkeys(tuple(r) for r in [*self.resolutions, *extra]))


@dataclass(frozen=True)
class PortabilityConfig:
    """Delegate targets reported for every artifact, and which of them a candidate must fully run on.

    ``require`` is checked from the Keras graph *before* training: ``on_violation=skip`` records the
    candidate as skipped with the reason; ``flag`` trains it anyway and keeps it off the Pareto front.
    """

    # What a 2026 app ships to: LiteRT's GPU accelerator, the NPUs of its vendor compiler plugins, XNNPACK on
    # the CPU. The deprecated NNAPI (nnapi_api27 .. nnapi_api34) and Hexagon targets stay selectable by name.
    targets: List[str] = field(default_factory=lambda: ["gpu", "qnn_htp", "neuron_apu", "xnnpack"])
    require: List[str] = field(default_factory=list)
    on_violation: str = "skip"
    objective: Optional[str] = None  # a target: its accelerator MAC fraction becomes a third front objective


@dataclass(frozen=True)
class OptimizeConfig:
    """Optimized variants made from trained candidates; each is its own row and point on the front.

    Float variants first: the trained model itself, one channel-pruned model per ``prune`` target (fraction
    of MACs removed at the first measured resolution, then ``prune_steps`` of fine-tuning; ``prune.py``) and
    one per ``sparsity`` pattern (TF-MOT's ``m:n`` structured sparsity, e.g. ``2:4``; ``sparsity.py``).
    Every float variant then gets each ``ptq`` mode (``export.QUANTIZATIONS``; calibration uses training
    crops) and, with ``qat_steps > 0``, an 8-bit QAT variant (``qat.py``): pruning + PTQ/QAT combos.
    ``apply_to``: ``all`` trained candidates, or only the ``pareto`` set of their float models, optimized
    once every candidate is trained.
    """

    ptq: List[str] = field(default_factory=list)
    representative_count: int = 32
    # > 0: an 8-bit QAT variant (<id>__qat-int8): fake-quant twin, ranges from calibration crops, this many
    # fine-tuning steps at qat_learning_rate, converted to full int8 (portable_deblur/optimize/qat.py).
    qat_steps: int = 0
    qat_learning_rate: float = 1e-4
    prune: List[float] = field(default_factory=list)  # MAC-reduction targets, e.g. [0.1, 0.3]
    prune_steps: int = 400  # fine-tuning after pruning (also after applying a sparsity pattern)
    prune_learning_rate: float = 3e-4
    # Channels go in chunks of this many per channel space, so widths stay multiples of it: XNNPACK's fp32
    # kernels work in 8-wide tiles here, and odd widths measured far smaller speed-ups for the same MACs.
    prune_multiple: int = 8
    sparsity: List[str] = field(default_factory=list)  # TF-MOT m:n patterns, e.g. ["2:4"]
    # Which pruned/sparse models also get the ptq/qat variants (combos): null = every one, else their ids,
    # e.g. ["prune-0.05"] (MediaTek Table 4 combines only its -5 % model), [] = none.
    combine: Optional[List[str]] = None
    apply_to: str = "all"  # all | pareto
    # ptq: [mixed] (and its QAT twin with qat_steps > 0): int8 with float islands chosen per layer
    # (optimize/mixed.py): the groups XNNPACK leaves off in int8 when that makes the file faster, then the
    # groups quantization damages most while the deployed PSNR drop exceeds mixed_max_drop_db and the file
    # stays within mixed_max_slowdown of the full int8 file's latency (at most mixed_max_tries tries).
    # mixed_islands (Keras layer names) / mixed_ops (TFLite op types) fix the float islands instead.
    mixed_max_drop_db: float = 0.1
    mixed_max_slowdown: float = 0.05
    mixed_max_tries: int = 4
    mixed_islands: List[str] = field(default_factory=list)
    mixed_ops: List[str] = field(default_factory=list)

    @property
    def variants(self) -> bool:
        """Whether any optimization is asked for."""
        return bool(self.ptq or self.qat_steps or self.prune or self.sparsity)




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
    # to it). Empty: every candidate trains train.steps.
    rungs: List[int] = field(default_factory=list)
    eta: int = 3
    # A run directory of the same space trained without rungs: the report lists the candidates a rung
    # dropped that its front kept.
    compare_run: Optional[str] = None
    # supernet: one weight-sharing network for the grid (models/supernet.py), trained supernet_steps once per
    # run, one path per step (path_sampling: fair or uniform, train/paths.py); then every candidate starts from
    # its path's weights and trains train.steps (rungs as usual). none: every candidate trains on its own.
    weight_sharing: str = "none"
    supernet_steps: int = 3000
    path_sampling: str = "fair"


@dataclass(frozen=True)
class RankConfig:
    """How sure a comparison must be: the level of every interval the front, its ties and the
    recommendation are judged by (quality: paired t over the validation frames; latency: order statistics of
    the paired ratios, ``confidence.py``). A difference inside its interval is a tie."""

    confidence: float = 0.95
    # A PSNR difference counts only when its whole interval clears this many dB. The interval covers which
    # validation frames were drawn, not which training run made the weights or which camera took the frames:
    # the default networks' differences of 0.01-0.04 dB on the validation had no relation to their order on
    # real GoPro / REDS frames (Kendall tau 0.07), and retrained from another seed, six such networks swapped
    # their order entirely (tau -0.07 between two seeds at 2,000 steps). 0: frame noise alone decides.
    quality_margin_db: float = 0.05
    # A latency ratio counts only when its whole interval lies beyond 1 +- this share: on a phone, another
    # runtime or another host of this class, a difference of a percent or two between two networks of one
    # family does not hold (the same files re-timed in another window moved by 1-2 % against each other).
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
