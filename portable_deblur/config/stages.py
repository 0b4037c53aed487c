"""The config sections of the pipeline's stages -- data, training, measurement, portability, optimization --
one frozen dataclass each, with the defaults every search space starts from."""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple


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
    leaves_reuse: int = 32  # consecutive crops that share one dead-leaves frame (each is slow to make)
    # The strongest depth-of-field blur of the leaves behind a frame's focus depth (Gaussian sigma, pixels;
    # each frame draws up to it): what a network learns to keep as the scene's own softness.
    leaves_defocus: float = 3.0
    # Each rendered training crop is used this many times on average (random flips/rotations, spread over
    # ~4x as many steps) while new ones keep coming: rendering every crop afresh (1) makes the renderer, not
    # the network, the bottleneck of a laptop's training step (data/scenes.py; docs/benchmarks.md).
    render_reuse: int = 8
    # Where training crops' sub-frames are resampled and summed: numpy, tensorflow (TF ops on the device TF
    # places them on), or auto -- tensorflow when TensorFlow sees a GPU, so a GPU's training steps do not wait
    # on the CPU's renderer; the same crops within float rounding (data/blur.py).
    renderer: str = "auto"
    # More content from the same photographs: each use of a crop in a random order of its colour channels.
    colour_shuffle: bool = False
    # Validation frames per photo and camera pipeline, each its own shake path, the lengths spread evenly over
    # blur_length. Networks differ frame to frame by far more than they differ on average, so the count sets
    # how small a difference the run can resolve; too few frames once ranked a much longer pretraining below a
    # shorter one, so the pretraining judges on 8 (figures: docs/benchmarks.md).
    val_blurs_per_image: int = 4
    # Path length in native pixels that a pixel travels during the exposure, averaged over the frame (drawn
    # log-uniformly): about the 5-35 px of hand-held 720p frames. Rotation and zoom add up to these fractions
    # of the translation at the frame corners, so the blur varies across the frame (blur.py).
    blur_length: List[float] = field(default_factory=lambda: [5.0, 35.0])
    rotation: float = 0.5
    zoom: float = 0.1
    # The camera pipeline training pairs are blurred in: srgb (GoPro's standard `blur` set), linear (light
    # integrated through a camera response, as REDS and real single exposures), or mixed (either, per crop).
    # Mixed, a quarter linear, is the one that gained in both pipelines' validation frames (srgb alone barely
    # helps in linear light, linear alone loses in srgb; figures: docs/benchmarks.md).
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
    # XLA: faster steps for conv/transpose/depth_to_space U-Nets on CPU, but slower for bilinear (its
    # ResizeBilinearGrad), and TF refuses op determinism with XLA's MaxPool gradient. Off by default.
    jit_compile: bool = False
    # "mirrored": build and train under tf.distribute.MirroredStrategy (every local GPU; one CPU otherwise).
    distribute: str = "none"
    # Keras mixed precision (float32 variables, 16-bit compute, loss scaling for fp16); the trained weights are
    # copied into a float32 model before evaluation and export, so the .tflite files do not change. auto:
    # mixed_bfloat16 on a CPU-only machine that computes bfloat16 natively (faster steps, the same gain;
    # docs/benchmarks.md), else float32.
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
    max_seconds: float = 5.0  # a slow artifact (16x8 PTQ, a 1080p file) stops timing after this (>= 3 runs)
    # Runs whose threads queued for a CPU (another process had it) are left out; while fewer than half a
    # batch are undisturbed, up to this many more batches follow a pause, then the row is flagged.
    retries: int = 3
    # The final re-timing the front ranks by: every competing file, each run paired with one of the reference
    # network, round-robin in one process, this many rounds of 10 pairs (search/settle.py; 0: rank by each
    # trial's own pairs). More pairs narrow each ratio's interval (order statistics of the pairs); half as
    # many left intervals too wide to order the default networks on a noisy 2-core host.
    interleaved_rounds: int = 3
    # The run's reference network is timed alone this many times at the start, each in a fresh process; the
    # fastest median is the run's latency unit, so one busy moment at the start does not set it.
    reference_repeats: int = 3
    # Also run every float artifact on LiteRT's GPU accelerator (needs a Vulkan adapter, deploy/gpu.py) and
    # keep its validation PSNR (psnr_gpu): what a phone's GPU outputs, in the accelerator's default precision.
    # Slow on software adapters (seconds per validation frame), so off by default.
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
