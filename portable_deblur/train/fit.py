"""Training stage: a step budget, Adam + cosine decay, seeded, streamed crops (``pipeline.py``), float32 or
mixed precision, resumable from a checkpoint (weights, optimizer state, step), TensorBoard scalars, tqdm."""
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
from tqdm.auto import tqdm

from portable_deblur.backend import keras, tf
from portable_deblur.data.sources import UnreadableImage
from portable_deblur.train.losses import diverged, get_distillation_loss, get_loss
from portable_deblur.data.pipeline import batches
from portable_deblur.models.supernet import set_path
from portable_deblur.registry import ConfigError


@dataclass(frozen=True)
class TrainResult:
    """What training produced besides the weights (which stay in the model)."""

    steps: int
    seconds: float
    final_loss: float


def seed_everything(seed: int, jit_compile: bool) -> None:
    """Same seed, same numbers: seeds Python, NumPy and TF; makes TF's own kernels deterministic.

    TF refuses op determinism for XLA's MaxPool gradient ("GPU MaxPool gradient ops do not yet have a
    deterministic XLA implementation"), so with ``train.jit_compile=true`` the switch is left off (XLA on CPU
    repeated exactly in our runs, but that is not guaranteed). The switch cannot be turned off again within
    a process, so one process should not mix the two paths.
    """
    keras.utils.set_random_seed(seed)
    if not jit_compile:
        tf.config.experimental.enable_op_determinism()


def strategy_for(cfg) -> tf.distribute.Strategy:
    """``train.distribute=mirrored``: MirroredStrategy over every local GPU (the CPU when there is none);
    otherwise TF's default (single-device) strategy. Build the model inside ``strategy.scope()``."""
    return tf.distribute.MirroredStrategy() if cfg.distribute == "mirrored" else tf.distribute.get_strategy()


def make_optimizer(cfg):
    """(learning-rate schedule, optimizer) for a ``TrainConfig``."""
    if cfg.schedule == "exponential":
        schedule = keras.optimizers.schedules.ExponentialDecay(cfg.learning_rate, cfg.decay_steps, cfg.decay_rate)
    else:
        warmup = min(cfg.warmup_steps, cfg.steps - 1)  # linear from 0, then cosine over the remaining steps
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else cfg.learning_rate, decay_steps=cfg.steps - warmup, alpha=cfg.final_lr_ratio,
            warmup_target=cfg.learning_rate if warmup else None, warmup_steps=warmup)
    if cfg.weight_decay > 0:
        return schedule, keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay, beta_2=cfg.beta_2)
    return schedule, keras.optimizers.Adam(schedule, beta_2=cfg.beta_2)


@contextmanager
def precision_policy(name: str):
    """Build (and train) models under Keras's ``name`` dtype policy: fp16/bf16 compute, float32 variables
    (``auto``: what ``environment.training_precision`` picks for this machine)."""
    from portable_deblur.environment import training_precision

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(training_precision(name))  # config.PRECISIONS (validated at load)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def as_float32(model: keras.Model) -> keras.Model:
    """The same network and weights with float32 layers: what evaluation and export use after mixed-precision
    training (the variables were float32 all along, so nothing is lost)."""
    if model.dtype_policy.name == "float32":
        return model
    clone = keras.models.clone_model(model, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "dtype": "float32"}))
    clone.set_weights(model.get_weights())
    return clone


def _input_error(exc: Exception) -> Exception:
    """A failed batch names the file that broke it (the message comes from ``data.read_image``)."""
    found = re.search(r"(cannot read image .*?|image .* has shape .*?)(\n|$)", str(exc))
    return UnreadableImage(found.group(1)) if found else exc


def make_step(model: keras.Model, optimizer, loss_fn, strategy: tf.distribute.Strategy, jit_compile: bool):
    """One optimizer step on a (blurry, sharp) batch; under a MirroredStrategy the batch is split across the
    replicas and their losses (each divided by the replica count) summed, so the update equals one device's."""
    replicas = strategy.num_replicas_in_sync
    scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def replica_step(blurry, sharp):
        with tf.GradientTape() as tape:
            restored = tf.cast(model(blurry, training=True), tf.float32)  # mixed precision computes in 16 bit
            loss = loss_fn(sharp, restored) / replicas  # summed across replicas
            scaled_loss = optimizer.get_scaled_loss(loss) if scaled else loss
        # A supernet's path uses some of the variables: the others get no gradient and are left alone.
        used = [(g, v) for g, v in zip(tape.gradient(scaled_loss, model.trainable_variables),
                                       model.trainable_variables) if g is not None]
        grads = [g for g, _ in used]
        if scaled:
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, [v for _, v in used]))
        return loss

    def step(blurry, sharp):
        if replicas == 1 and not isinstance(strategy, tf.distribute.MirroredStrategy):
            return replica_step(blurry, sharp)
        shards = strategy.experimental_distribute_values_from_function(
            lambda ctx: (blurry[ctx.replica_id_in_sync_group::replicas], sharp[ctx.replica_id_in_sync_group::replicas]))
        per_replica = strategy.run(replica_step, args=shards)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return step


def make_group_step(model: keras.Model, optimizer, loss_fn, distill_fn, strategy: tf.distribute.Strategy,
                    jit_compile: bool, group: List[Dict], traced: Dict):
    """One optimizer step over several paths of a supernet (``group``, the first one the teacher): each path's
    gradient on the batch, the first's by ``loss_fn`` against the sharp frames, the others' by ``distill_fn``
    against the first path's output (in-place distillation, ``losses.get_distillation_loss``), summed into one
    update. Each path's gradient is traced once per role (``traced``, by role and path) and reused in every
    group it comes up in."""
    if strategy.num_replicas_in_sync > 1 or isinstance(strategy, tf.distribute.MirroredStrategy):
        raise ConfigError("search.path_sampling=sandwich trains its paths on one device; set "
                          "train.distribute=none")
    scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
    variables = model.trainable_variables

    def gradient_of(path: Dict, teaches: bool):
        key = (teaches, tuple(sorted(path.items())))
        if key not in traced:
            @tf.function(jit_compile=jit_compile, reduce_retracing=True)
            def path_gradient(blurry, sharp, teacher):
                with tf.GradientTape() as tape:
                    restored = tf.cast(model(blurry, training=True), tf.float32)
                    loss = loss_fn(sharp, restored) if teaches else distill_fn(sharp, teacher, restored)
                    scaled_loss = optimizer.get_scaled_loss(loss) if scaled else loss
                grads = tape.gradient(scaled_loss, variables)  # a sliced (elastic) weight's may be IndexedSlices
                return loss, restored, [None if g is None else tf.convert_to_tensor(g) for g in grads]

            traced[key] = path_gradient
        set_path(model, path)  # read when the path's gradient is traced (its first call)
        return traced[key]

    def step(blurry, sharp):
        total, summed, teacher = 0.0, [None] * len(variables), sharp
        for j, path in enumerate(group):
            loss, restored, grads = gradient_of(path, j == 0)(blurry, sharp, teacher)
            if j == 0:
                teacher = tf.stop_gradient(restored)  # the teacher of the others
            total += loss
            summed = [g if s is None else s if g is None else s + g for s, g in zip(summed, grads)]
        used = [(g, v) for g, v in zip(summed, variables) if g is not None]
        grads = [g for g, _ in used]
        if scaled:
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, [v for _, v in used]))
        return total / len(group)

    return step


def _optimizer_state(model: keras.Model, cfg, strategy: tf.distribute.Strategy, checkpoint: Optional[Path]):
    """(the learning-rate schedule, the optimizer with every slot built, the checkpoint manager or None),
    restored from ``checkpoint`` when it holds one."""
    with strategy.scope():
        schedule, optimizer = make_optimizer(cfg)
        if model.dtype_policy.name == "mixed_float16":  # fp16 gradients underflow without loss scaling
            optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)  # every slot, also of variables a path leaves out
        state = tf.train.Checkpoint(model=model, optimizer=optimizer)
        saver = tf.train.CheckpointManager(state, str(checkpoint), max_to_keep=1) if checkpoint else None
        if saver is not None and saver.latest_checkpoint:
            state.restore(saver.latest_checkpoint).expect_partial()
    return schedule, optimizer, saver


def _checked_losses(pending: list, i: int, cfg, losses: List[float]) -> None:
    """Append the losses of the steps up to ``i`` not read yet to ``losses`` (the call's losses so far). A
    non-finite one, or a ``log_every`` window far worse than the call's first (``losses.diverged``), stops
    training now (every later step would be wasted on a broken model), naming the step and what to change."""
    read = [float(v) for v in pending]
    bad = next((j for j, v in enumerate(read) if not np.isfinite(v)), None)
    if bad is not None:
        raise FloatingPointError(f"training loss became {read[bad]} at step {i + 2 - len(read) + bad}; "
                                 f"try a lower train.learning_rate (now {cfg.learning_rate})")
    losses.extend(read)
    window = cfg.log_every
    if len(losses) >= 2 * window:
        first, recent = float(np.mean(losses[:window])), float(np.mean(losses[-window:]))
        if diverged(cfg.loss, first, recent):
            raise FloatingPointError(
                f"training diverged: mean {cfg.loss} loss {recent:.4g} over steps {i + 2 - window}-{i + 1}, against "
                f"{first:.4g} over this run's first {window}; try a lower train.learning_rate (now "
                f"{cfg.learning_rate}) or a longer train.warmup_steps (now {cfg.warmup_steps})")


def fit(model: keras.Model, train_pairs, cfg, log_dir: Optional[Path] = None, desc: str = "train",
        strategy: Optional[tf.distribute.Strategy] = None, checkpoint: Optional[Path] = None,
        stop_at: Optional[int] = None, paths: Optional[Callable[[int], List[Dict]]] = None,
        save_every: int = 0, on_save: Optional[Callable[[int], bool]] = None) -> TrainResult:
    """Train ``model`` in place on random crops of ``train_pairs`` according to a ``TrainConfig``.

    With a ``strategy`` (the one ``model`` was built under), each batch is split across its replicas and
    the gradients are summed across them, so the update equals the single-device one. With ``checkpoint``
    (a folder), training resumes from the weights, optimizer state and step saved there and saves them
    again at the end; ``stop_at`` ends before ``cfg.steps`` (the schedule still spans ``cfg.steps``), so
    training in pieces equals training at once.

    ``paths`` (a supernet, ``models/supernet.py``): step ``i`` trains the paths ``paths(i)`` (a list,
    ``train/paths.py``); one path gets its own traced step the first time it comes up, several are one
    update of their summed gradients, the first path teaching the others (``make_group_step``); a step once
    traced serves every later step of its path in this call. ``save_every``: also checkpoint every that many
    steps (long training loses at most that much when interrupted); ``on_save(step)`` is called after each
    such checkpoint, and training stops there when it returns False (the result says the steps reached).

    The loop never waits for a step to finish: the loss is read (and checked) every ``cfg.log_every``
    steps, so the next batch's input overlaps the running step.
    """
    seed_everything(cfg.seed, cfg.jit_compile)
    loss_fn = get_loss(cfg.loss, cfg.fft_weight)
    distill_fn = get_distillation_loss(cfg.loss, cfg.fft_weight)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ConfigError(f"train.batch_size={cfg.batch_size} must be a multiple of the {replicas} replicas "
                          f"of train.distribute={cfg.distribute}")
    schedule, optimizer, saver = _optimizer_state(model, cfg, strategy, checkpoint)
    start, end = int(optimizer.iterations.numpy()), min(stop_at or cfg.steps, cfg.steps)
    traced: Dict = {}

    gradients: Dict = {}  # path -> its traced gradient, for steps that train several paths

    def step_at(i: int):
        group = paths(i) if paths is not None else [None]
        if len(group) > 1:
            return make_group_step(model, optimizer, loss_fn, distill_fn, strategy, cfg.jit_compile, group,
                                   gradients)
        path = group[0]
        key = None if path is None else tuple(sorted(path.items()))
        if path is not None:
            set_path(model, path)  # read when the path's step is traced (its first call)
        if key not in traced:
            traced[key] = make_step(model, optimizer, loss_fn, strategy, cfg.jit_compile)
        return traced[key]

    data = batches(train_pairs, cfg.batch_size, cfg.crop, cfg.crops_per_pair, cfg.seed, start, max(end - start, 0))
    writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else tf.summary.create_noop_writer()
    clock, losses, reached = time.perf_counter(), [], min(start, end)
    with writer.as_default(), tqdm(total=end, initial=start, desc=desc, leave=False, disable=None) as bar:
        try:
            pending = []
            for i, (blurry, sharp) in enumerate(data, start):
                pending.append(step_at(i)(blurry, sharp))
                if (i + 1) % cfg.log_every == 0 or i + 1 == end:
                    _checked_losses(pending, i, cfg, losses)  # the one wait for the device in log_every steps
                    pending = []
                    recent = float(np.mean(losses[-cfg.log_every:]))
                    tf.summary.scalar("train/loss", recent, step=i + 1)
                    tf.summary.scalar("train/learning_rate", float(schedule(i)), step=i + 1)
                    bar.set_postfix(loss=f"{recent:.4f}")
                reached = i + 1
                bar.update(1)
                if save_every and reached % save_every == 0 and reached < end:
                    if pending:  # a checkpoint holds only checked steps
                        _checked_losses(pending, i, cfg, losses)
                        pending = []
                    if saver is not None:
                        saver.save(checkpoint_number=reached)
                    if on_save is not None and on_save(reached) is False:
                        break
        except tf.errors.OpError as exc:  # a file that fails to decode mid-run: fail the trial, naming it
            raise _input_error(exc) from None
    writer.flush()
    if saver is not None:
        saver.save(checkpoint_number=reached)
    final = float(np.mean(losses[-cfg.log_every:])) if losses else float("nan")
    return TrainResult(reached, time.perf_counter() - clock, final)


def log_scalars(log_dir: Path, step: int, **values: float) -> None:
    """Append scalars (e.g. validation PSNR) to a candidate's TensorBoard log."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for name, value in values.items():
            tf.summary.scalar(name, value, step=step)
    writer.flush()
