"""``search.weight_sharing=supernet``: the run's one supernet, trained once before any candidate, then the
start of every candidate (``train/start.py``).

It lives in ``<run>/supernet/``: a checkpoint (weights, optimizer state, step: an interrupted run resumes
it), then ``weights.npz`` (its weight table) and ``weights.json`` (its record). With several workers the
first one to take ``training.lock`` trains it (refreshing the lock while it does); the others wait for the
record, and take the lock over when it has not been refreshed for three heartbeats (a killed worker).
"""
import dataclasses
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

from portable_deblur.files import atomic_write
from portable_deblur.layout import RunLayout
from portable_deblur.models.candidate import Candidate
from portable_deblur.search.heartbeat import GRACE_HEARTBEATS
from portable_deblur.train.start import Start, configured_start

def supernet_start(cfg, layout, dataset, candidates: Sequence[Candidate]) -> Start:
    """The run's trained supernet as a start (training it first, or waiting for the worker that does)."""
    folder = layout.supernet
    folder.mkdir(parents=True, exist_ok=True)
    table = RunLayout.weight_table(folder)
    waited = False
    while not RunLayout.weight_record(folder).is_file():
        with _Lock(RunLayout.training_lock(folder), cfg.search.heartbeat_s) as held:
            if held and not RunLayout.weight_record(folder).is_file():
                train_supernet(cfg, folder, dataset, candidates)
                continue
        if not waited:
            print(f"waiting for the worker that trains the supernet ({RunLayout.training_lock(folder)})",
                  file=sys.stderr, flush=True)
            waited = True
        time.sleep(min(5.0, cfg.search.heartbeat_s))
    record = json.loads(RunLayout.weight_record(folder).read_text())
    return Start(table, int(record["steps"]), "supernet")


def train_supernet(cfg, folder: Path, dataset, candidates: Sequence[Candidate], steps: Optional[int] = None,
                   save_every: int = 500, minutes: Optional[float] = None, extra: Optional[Dict] = None) -> Dict:
    """Train the supernet of ``candidates`` to ``steps`` (default ``search.supernet_steps``) in ``folder``
    (resuming its checkpoint), starting from ``train.init`` when that names a weight table; then write its
    weight table and its record (steps, seconds, path sampling, each path's validation PSNR per pipeline).

    It trains in pieces of ``save_every`` steps, each ending in a checkpoint and the weight table, so an
    interruption loses at most one piece; ``minutes`` stops after the piece that passes that much time
    (the record says the steps reached). Seconds add up over resumed sessions (``progress.json``)."""
    from portable_deblur.environment import training_precision
    from portable_deblur.models.pretrained import read_record, sha256
    from portable_deblur.models.importance import order_by_importance
    from portable_deblur.models.supernet import (ELASTIC, build_supernet, load_table, read_table, save_table, spec_of,
                                                 weight_table)
    from portable_deblur.search.summary import clock_text
    from portable_deblur.train.fit import fit, precision_policy, seed_everything, strategy_for
    from portable_deblur.train.paths import path_sampler

    steps = steps or cfg.search.supernet_steps
    spec = spec_of(candidates)
    seed_everything(cfg.train.seed, cfg.train.jit_compile)
    strategy = strategy_for(cfg.train)
    with precision_policy(cfg.train.precision), strategy.scope():
        net = build_supernet(spec)
    start = configured_start(cfg.train.init, candidates[0].id)
    if start.table:  # a longer-trained supernet of the same grid (the shipped start) continues here
        table = read_table(start.path)
        load_table(net, table)
        if spec.widths and ELASTIC not in table:  # one width continued as several: important channels first
            order_by_importance(net)
    train_cfg = dataclasses.replace(cfg.train, steps=steps)
    progress_file = RunLayout.training_progress(folder)
    progress = json.loads(progress_file.read_text()) if progress_file.is_file() else {"seconds": 0.0, "cpu_seconds": 0.0}
    deadline = None if minutes is None else time.time() + 60 * minutes
    sampler = path_sampler(spec.choices, cfg.train.seed, cfg.search.path_sampling, cfg.search.sandwich_random)
    reached = progress.get("steps", 0)
    before_session, first = dict(progress), reached  # what earlier sessions spent; this one's start
    wall0, cpu0 = time.perf_counter(), time.process_time()
    log = not sys.stdout.isatty()  # a terminal shows the progress bar instead

    def saved(step: int) -> bool:  # after each piece's checkpoint: its weight table and the time spent so far
        nonlocal progress
        save_table(weight_table(net), RunLayout.weight_table(folder))
        elapsed = time.perf_counter() - wall0
        progress = {"steps": step, "seconds": before_session["seconds"] + elapsed,
                    "cpu_seconds": before_session["cpu_seconds"] + time.process_time() - cpu0}
        atomic_write(progress_file, json.dumps(progress))
        if log and step > first:
            print(f"supernet: {step}/{steps} steps ({len(candidates)} paths, {cfg.search.path_sampling}); elapsed "
                  f"{clock_text(elapsed)}, ~{clock_text(elapsed / (step - first) * (steps - step))} left", flush=True)
        return deadline is None or time.time() < deadline

    if reached < steps:  # one call: a path's traced step serves it in every piece
        reached = fit(net, dataset.train, train_cfg, log_dir=folder / "tensorboard", desc="supernet",
                      strategy=strategy, checkpoint=folder / "checkpoint", paths=sampler, save_every=save_every,
                      on_save=saved).steps
        if progress.get("steps") != reached:  # the last piece
            saved(reached)
    # the trained weights: a run resumed after its last piece trains nothing, and its net holds only the start
    table = read_table(RunLayout.weight_table(folder)) if reached else weight_table(net)
    before = read_record(start.path) if start.table else {}  # a continued start's own training counts too
    record = {
        "steps": start.steps + reached, "own_steps": reached, "started_from": start.source or "initialiser",
        "seconds": round(before.get("seconds", 0.0) + progress["seconds"], 1),
        "cpu_seconds": round(before.get("cpu_seconds", 0.0) + progress["cpu_seconds"], 1),
        "path_sampling": cfg.search.path_sampling, "precision": training_precision(cfg.train.precision),
        "seed": cfg.train.seed,
        "paths": path_quality(table, candidates, dataset), "sha256": sha256(RunLayout.weight_table(folder)),
        **(extra or {}),
    }
    atomic_write(RunLayout.weight_record(folder), json.dumps(record, indent=1, default=str))
    print(paths_summary(record, len(candidates), cfg.train.loss), flush=True)
    return record


IDENTITY_DB = 0.001  # a path whose gain over the blurry input is smaller still outputs its input


def paths_summary(record: Dict, total: int, loss: str) -> str:
    """What a trained supernet's recorded paths (``record["paths"]``, ``path_quality``) gain over the blurry
    input, and a warning when most of them still output their input: the search would judge candidates that
    all tie."""
    import numpy as np

    gains = np.array([p["gain"] for p in record["paths"].values()])
    still = int(np.sum(np.abs(gains) < IDENTITY_DB))
    which = f"{len(gains)} of its {total}" if len(gains) < total else f"its {total}"
    line = (f"supernet: {which} paths on the validation frames gain {gains.min():+.3f} .. "
            f"{gains.max():+.3f} dB over the blurry input (median {np.median(gains):+.3f})")
    if 2 * still <= len(gains):
        return line
    hint = (" or with the L1 loss (train.loss=l1: under the PSNR loss a supernet of widths and depths kept its "
            "paths at the identity where L1 trained them)" if loss == "psnr" else "")
    return (f"{line}\nwarning: {still} of the {len(gains)} still output their input (gain under {IDENTITY_DB} dB), "
            f"so their candidates will tie: train the supernet longer than its {record['steps']} steps "
            f"(search.supernet_steps){hint}")


RECORDED_PATHS = 16  # a grid of more paths records this many, spread over it (its trials judge every one)


def path_quality(table, candidates: Sequence[Candidate], dataset) -> Dict[str, Dict[str, float]]:
    """Each path's Keras PSNR on the validation frames, straight from the supernet's weights: ``{candidate
    id: {"psnr": .., "gain": .., "gain_<pipeline>": ..}}``; of a larger grid (240 U-Nets), ``RECORDED_PATHS``
    spread evenly over the grid's order, first and last included: the record says how training went, the
    search's trials judge each candidate they reach."""
    import numpy as np

    from portable_deblur.models.build import size_multiple
    from portable_deblur.models.supernet import extract
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, keras_predictor, quality

    blurry = blurry_quality(dataset.val)
    if len(candidates) > RECORDED_PATHS:
        candidates = [candidates[int(i)] for i in np.linspace(0, len(candidates) - 1, RECORDED_PATHS).round()]
    out = {}
    for c in candidates:
        model = extract(table, c)
        q = quality(keras_predictor(model), dataset.val, canvas_shape(dataset.val, size_multiple(c)),
                    ssim=False)
        out[c.id] = {"psnr": round(q.psnr, 4), "gain": round(q.psnr - blurry.psnr, 4),
                     **{f"gain_{name}": round(psnr - blurry.per_pipeline[name][0], 4)
                        for name, (psnr, _) in q.per_pipeline.items()}}
    return out


class _Lock:
    """An exclusive lock file, refreshed from a thread while held; one left stale (not refreshed for
    ``GRACE_HEARTBEATS`` heartbeats) is taken over."""

    def __init__(self, path: Path, heartbeat_s: float):
        self.path, self.heartbeat_s, self.held = path, heartbeat_s, False
        self._stop = threading.Event()

    def __enter__(self) -> bool:
        try:
            if time.time() - self.path.stat().st_mtime > GRACE_HEARTBEATS * self.heartbeat_s:
                self.path.unlink(missing_ok=True)  # its worker stopped refreshing it: taken as dead
        except FileNotFoundError:
            pass
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(fd, f"{socket.gethostname()}:{os.getpid()}".encode())
        os.close(fd)
        self.held = True
        threading.Thread(target=self._refresh, daemon=True).start()
        return True

    def _refresh(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.held:
            self.path.unlink(missing_ok=True)
