"""Benchmark: does the default run's fine-tuning change any decision?

Each default candidate starts from its path of the shipped pretrained supernet and fine-tunes on its own. This
judges every path's start weights on the run's validation frames (Keras, float32, as the run judges its
models) and compares them, paired frame by frame, with the run's fine-tuned models: what fine-tuning changed
per path (with its interval), and the decision -- quality verdicts, front, tie groups, recommendation -- under
each, with the run's own latency estimates (latency does not depend on the weights).

    python benchmarks/fine_tuning_decision.py experiments/runs/upsampling
    python benchmarks/fine_tuning_decision.py --tiny [run]   # smoke scale (a smoke run is made when none is given)
"""
import argparse
import dataclasses
import sys
import time


def start_scores(study):
    """Per candidate id: the ``FrameScores`` (keras, blurry) of its start's weights on the run's frames."""
    from portable_deblur.backend import keras
    from portable_deblur.data.sources import load_dataset
    from portable_deblur.models.build import build_model, size_multiple
    from portable_deblur.models.candidate import expand
    from portable_deblur.train.evaluate import blurry_quality, canvas_shape, frame_scores, quality
    from portable_deblur.train.start import apply_start, start_of

    cfg = study.cfg
    dataset = load_dataset(cfg.data)
    out = {}
    for candidate in expand(cfg.arch, cfg.model, cfg.grid):
        keras.utils.set_random_seed(cfg.train.seed)
        model = build_model(candidate)
        apply_start(model, candidate, start_of(cfg, study.layout, candidate))
        canvas = canvas_shape(dataset.val, size_multiple(candidate))
        q = quality(lambda x: model(x, training=False).numpy(), dataset.val, canvas)
        out[candidate.id] = frame_scores(dataset.val, blurry=blurry_quality(dataset.val), keras=q, tflite=q)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?")
    parser.add_argument("--tiny", action="store_true", help="smoke scale: without a run, make one at smoke scale")
    args = parser.parse_args(argv)
    if args.run is None and not args.tiny:
        parser.error("give a run directory (or --tiny)")
    from portable_deblur.confidence import paired_difference
    from portable_deblur.decision import decide
    from portable_deblur.rank import Objectives
    from portable_deblur.search.study import SearchStudy

    from portable_deblur.config.smoke import smoke_run

    study = SearchStudy.load(args.run or smoke_run())
    spec = dataclasses.replace(Objectives.of(study.cfg), psnr="keras")
    rows = [r for r in study.rows() if r.status == "ok" and r.frames is not None]
    begin = time.perf_counter()
    starts = start_scores(study)
    print(f"judged {len(starts)} starts on {len(rows[0].frames.names)} frames in {time.perf_counter() - begin:.0f} s; "
          f"the run fine-tuned {rows[0].steps} steps each ({sum(r.seconds.get('train', 0) for r in rows):.0f} s of "
          f"training and judging in all)")
    for r in sorted(rows, key=lambda r: r.id):
        d = paired_difference(r.frames.values("keras"), starts[r.id].values("keras"), spec.level)
        print(f"  {r.id:52} fine-tuned minus start {d.text('+.4f', ' dB')}")
    as_started = [dataclasses.replace(r, frames=starts[r.id]) for r in rows]
    for name, judged in (("fine-tuned", rows), ("start weights", as_started)):
        decision = decide(judged, spec, study.cfg.rank.resamples)
        print(f"\n{name}: front {sorted(r.id for r in decision.front)}; tie groups {[list(g) for g in decision.ties]}")
        for line in decision.lines:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
