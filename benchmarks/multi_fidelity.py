"""Benchmark: full grid at the top rung's steps against multi-fidelity (search.rungs), side by side.

For each setting, two searches on this machine, one after the other: the *full* run trains every candidate
``rungs[-1]`` steps; the *multi-fidelity* run trains them in rungs (``search.rungs``, ``search.eta``) and
compares itself with the full run (``search.compare_run``: its report lists what a rung dropped that the
full front kept). Prints, per setting: training steps spent, wall time, hypervolume of each front from the
same reference point (the blurry input's PSNR and 1.1x the slowest latency of both runs; latency is the
undisturbed trial median both fronts rank by), and the multi-fidelity run's share.

    python benchmarks/multi_fidelity.py upsampling            # space=upsampling_scratch, its own rungs
    python benchmarks/multi_fidelity.py architecture          # a 24-candidate grid slice of space=architecture
    python benchmarks/multi_fidelity.py upsampling key=value  # e.g. search.rungs=[50,150,600]
    python benchmarks/multi_fidelity.py upsampling search.eta=2 --full=<run>  # reuse a full run of the setting
                                                              # (its wall time read from its trials)
    python benchmarks/multi_fidelity.py upsampling --tiny     # smoke scale: two networks, rungs [1, 3]
"""
import sys
import time

# 2 widths x 2 depths x 3 upsamplers x 2 activations = 24 U-Nets, enumerated (grid) rather than sampled.
ARCHITECTURE_SLICE = ["search.sampler=grid", "grid.width=[8,16]", "grid.enc_blocks=[[1,1],[1,1,1]]",
                      "grid.upsampler=[transpose,depth_to_space,bilinear]", "grid.activation=[relu,prelu]",
                      "search.rungs=[50,150,450]", "search.eta=3"]
SETTINGS = {"upsampling": ["space=upsampling_scratch"], "architecture": ["space=architecture", *ARCHITECTURE_SLICE]}


def _search(args):
    """Run one search to the end; (its study, wall seconds)."""
    from portable_deblur.search.run import prepare, run_search

    start = time.perf_counter()
    cfg, violations, dataset, study = prepare(args)
    run_search(cfg, violations, study, dataset)
    return study, time.perf_counter() - start


def _steps(study) -> int:
    """Training steps spent: each candidate's steps at its highest rung (a rung continues the last)."""
    most = {}
    for r in study.store.history():
        if r.optimization == "fp32" and r.status == "ok":
            most[r.id] = max(most.get(r.id, 0), r.steps)
    return sum(most.values())


def _reused(run: str, rungs):
    """A finished full run of the setting: (its study, wall seconds from its first start to its last end)."""
    from portable_deblur.search.study import SearchStudy

    study = SearchStudy.load(run)
    if study.cfg.search.rungs or study.cfg.train.steps != rungs[-1]:
        raise SystemExit(f"--full={run} is not a full run at {rungs[-1]} steps (its rungs "
                         f"{study.cfg.search.rungs}, train.steps {study.cfg.train.steps})")
    trials = [t for t in study.study.get_trials(deepcopy=False) if t.datetime_complete]
    seconds = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return study, seconds


def latency_stability(studies, key: str) -> None:
    """Each float network is timed once per rung it reaches in each run, at different moments of the
    benchmark: per network, the spread (max/min) of its raw trial medians against that of its ratio to the
    reference network (latency does not depend on the weights); the fronts rank by the raw (undisturbed) median."""
    import numpy as np

    raw, stable = {}, {}
    for study in studies:
        for r in study.store.history():
            lat = r.latency.get(key, {})
            if r.status == "ok" and r.optimization == "fp32" and lat.get("reference_ratio"):
                raw.setdefault(r.id, []).append(lat["median_ms"])
                stable.setdefault(r.id, []).append(lat["reference_ratio"])
    spreads = [(max(raw[i]) / min(raw[i]), max(stable[i]) / min(stable[i])) for i in raw if len(raw[i]) > 1]
    if spreads:
        r, s = np.array(spreads).T
        print(f"latency stability over {len(spreads)} networks timed 2-4 times each: max/min of raw trial medians "
              f"median {np.median(r):.3f} (worst {r.max():.3f}); of reference ratios median {np.median(s):.3f} "
              f"(worst {s.max():.3f})")


def main(argv=None) -> int:
    from portable_deblur.config import load_config
    from portable_deblur.rank import Objectives, front_hypervolume, front_rows, hv_reference

    from portable_deblur.config.smoke import smoke_overrides, smoke_root, tiny_flag

    tiny, argv = tiny_flag(sys.argv[1:] if argv is None else argv)
    if tiny:  # two networks, two rungs, in a temporary folder
        argv = [*argv[:1], *smoke_overrides(smoke_root()), "grid.upsampler=[transpose,bilinear]",
                "grid.activation=[relu]", "grid.width=[4]", "search.rungs=[1,3]", "search.eta=2", *argv[1:]]
    if not argv or argv[0] not in SETTINGS:
        print(f"usage: python benchmarks/multi_fidelity.py {{{'|'.join(SETTINGS)}}} [key=value ...]", file=sys.stderr)
        return 2
    name, extra = argv[0], [a for a in argv[1:] if not a.startswith("--full=")]
    reuse = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--full=")), None)
    base = [*SETTINGS[name], *extra]
    rungs = load_config(base).search.rungs
    if not rungs:
        print("error: the setting has no search.rungs", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%d_%H%M%S")
    full_args = [*base, "search.rungs=[]", f"train.steps={rungs[-1]}", f"run.name=bench_mf_{name}_full_{stamp}"]
    full, full_s = _reused(reuse, rungs) if reuse else _search(full_args)
    mf, mf_s = _search([*base, f"search.compare_run={full.layout.root}", f"run.name=bench_mf_{name}_rungs_{stamp}"])
    spec = Objectives.of(mf.cfg)
    rows = {"full": full.rows(), "multi-fidelity": mf.rows()}
    reference = hv_reference(rows["full"] + rows["multi-fidelity"], spec)
    figures = {}
    for label, study, seconds in (("full", full, full_s), ("multi-fidelity", mf, mf_s)):
        front = front_rows(rows[label], spec)[1]
        figures[label] = (_steps(study), seconds, front_hypervolume(rows[label], spec, reference), front)
    print(f"\n{name}: {len(full.rows())} candidates, rungs {rungs} eta {mf.cfg.search.eta}; hypervolume reference "
          f"point ({reference[0]:.2f} dB, {reference[1]:.1f} ms @{spec.latency})")
    print(f"{'':16}{'steps':>8}{'wall s':>9}{'hypervolume':>13}  front (PSNR dB / ms, steps)")
    for label, (steps, seconds, hv, front) in figures.items():
        desc = ", ".join(f"{r.id.replace('unet__', '')} {r.psnr_tflite:.2f}/{r.best_ms(spec.latency):.1f} ({r.steps})"
                         for r in front)
        print(f"{label:16}{steps:8d}{seconds:9.0f}{hv:13.4g}  {desc}")
    (fs, fw, fh, _), (ms, mw, mh, _) = figures["full"], figures["multi-fidelity"]
    print(f"multi-fidelity / full: {ms / fs:.0%} of the steps, {mw / fw:.0%} of the wall time, "
          f"{mh / fh if fh else float('nan'):.1%} of the hypervolume (goal: >= 95 % for <= 40 %)")
    latency_stability([full, mf], spec.latency)
    print(f"reports: {full.layout.report}  {mf.layout.report} (its Rungs section)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
