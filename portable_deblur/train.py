"""Training stage: fixed step budget, Adam + cosine decay, seeded, TensorBoard scalars, tqdm progress."""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm.auto import tqdm

from portable_deblur.backend import keras, tf
from portable_deblur.data import sample_batch
from portable_deblur.losses import get_loss
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
        schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=cfg.steps,
                                                          alpha=cfg.final_lr_ratio)
    if cfg.weight_decay > 0:
        return schedule, keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay, beta_2=cfg.beta_2)
    return schedule, keras.optimizers.Adam(schedule, beta_2=cfg.beta_2)


def fit(model: keras.Model, train_pairs, cfg, log_dir: Optional[Path] = None, desc: str = "train",
        strategy: Optional[tf.distribute.Strategy] = None) -> TrainResult:
    """Train ``model`` in place on random crops of ``train_pairs`` according to a ``TrainConfig``.

    With a ``strategy`` (the one ``model`` was built under), each batch is split across its replicas and
    the gradients are summed across them, so the update equals the single-device one.
    """
    smallest = min(min(p.sharp.shape[:2]) for p in train_pairs)
    if cfg.crop > smallest:
        raise ConfigError(f"train.crop={cfg.crop} is larger than the smallest training image ({smallest} px)")
    seed_everything(cfg.seed, cfg.jit_compile)
    rng = np.random.default_rng(cfg.seed)
    loss_fn = get_loss(cfg.loss, cfg.fft_weight)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ConfigError(f"train.batch_size={cfg.batch_size} must be a multiple of the {replicas} replicas "
                          f"of train.distribute={cfg.distribute}")
    with strategy.scope():
        schedule, optimizer = make_optimizer(cfg)

    @tf.function(jit_compile=cfg.jit_compile, reduce_retracing=True)
    def replica_step(blurry, sharp):
        with tf.GradientTape() as tape:
            loss = loss_fn(sharp, model(blurry, training=True)) / replicas  # summed across replicas
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def step(blurry, sharp):
        if replicas == 1 and not isinstance(strategy, tf.distribute.MirroredStrategy):
            return replica_step(blurry, sharp)
        shards = strategy.experimental_distribute_values_from_function(
            lambda ctx: (blurry[ctx.replica_id_in_sync_group::replicas], sharp[ctx.replica_id_in_sync_group::replicas]))
        per_replica = strategy.run(replica_step, args=shards)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else tf.summary.create_noop_writer()
    start, losses = time.perf_counter(), []
    with writer.as_default(), tqdm(total=cfg.steps, desc=desc, leave=False, disable=None) as bar:
        for i in range(cfg.steps):
            loss = float(step(*sample_batch(rng, train_pairs, cfg.batch_size, cfg.crop)))
            if not np.isfinite(loss):  # stop now: every later step would be wasted on a broken model
                raise FloatingPointError(f"training loss became {loss} at step {i + 1}; "
                                         f"try a lower train.learning_rate (now {cfg.learning_rate})")
            losses.append(loss)
            if (i + 1) % cfg.log_every == 0 or i + 1 == cfg.steps:
                recent = float(np.mean(losses[-cfg.log_every:]))
                tf.summary.scalar("train/loss", recent, step=i + 1)
                tf.summary.scalar("train/learning_rate", float(schedule(i)), step=i + 1)
                bar.set_postfix(loss=f"{recent:.4f}")
            bar.update(1)
    writer.flush()
    return TrainResult(cfg.steps, time.perf_counter() - start, float(np.mean(losses[-cfg.log_every:])))


def log_scalars(log_dir: Path, step: int, **values: float) -> None:
    """Append scalars (e.g. validation PSNR) to a candidate's TensorBoard log."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for name, value in values.items():
            tf.summary.scalar(name, value, step=step)
    writer.flush()
