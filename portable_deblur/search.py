"""``python -m portable_deblur.search space=NAME [key=value ...]``: the whole pipeline for one search space.

config -> candidates (+ pre-training portability check) -> per candidate: train -> evaluate -> export ->
portability -> measure -> interleaved re-timing -> Pareto front -> report.
"""
import sys
from typing import Dict, List, Optional, Sequence

from tqdm.auto import tqdm

from portable_deblur.candidate import Candidate, expand
from portable_deblur.config import Config, load_config
from portable_deblur.registry import ConfigError
from portable_deblur.results import ResultRow, RunStore, latency_key


def check_candidates(cfg: Config, candidates: Sequence[Candidate]) -> Dict[str, Dict[str, str]]:
    """Build every candidate once (cheap) so a bad argument fails before any training starts.

    Returns, per candidate id, ``{required target: why its Keras graph would fall back there}``, judged
    before any training time is spent on it.
    """
    from portable_deblur.model import build_model, check_arguments
    from portable_deblur.portability import check_all, predict_ops

    violations = {}
    for c in candidates:
        check_arguments(c.arch, c.kwargs)
        model = build_model(c)
        reports = check_all(predict_ops(model), cfg.portability.require) if cfg.portability.require else {}
        violations[c.id] = {t: ", ".join(r.fallback.values()) for t, r in reports.items() if not r.portable}
    return violations


def prepare(args: Sequence[str]):
    """Everything that can fail on user input, done before any work: config, candidates, run dir."""
    cfg = load_config(args)
    candidates = expand(cfg.arch, cfg.model, cfg.grid)
    violations = check_candidates(cfg, candidates)
    return cfg, candidates, violations, RunStore.open(cfg)


def primary_key(cfg: Config) -> str:
    """The latency the Pareto front uses: first resolution, first thread count."""
    return latency_key(cfg.measure.shapes[0], cfg.measure.threads[0])


def run_search(cfg: Config, candidates: Sequence[Candidate], violations: Dict[str, Dict[str, str]],
               store: RunStore) -> List[ResultRow]:
    """Run every unfinished candidate, recording each as it finishes; returns the Pareto front."""
    from portable_deblur.data import load_dataset
    from portable_deblur.report import write_report
    from portable_deblur.trial import failed_row, run_candidate, skipped_row

    dataset = load_dataset(cfg.data)
    done = store.finished()
    for candidate in tqdm(candidates, desc="candidates", disable=None):
        if candidate.id in done:
            continue
        reasons = violations.get(candidate.id, {})
        if reasons and cfg.portability.on_violation == "skip":
            store.append(skipped_row(candidate, reasons))
            continue
        try:
            rows = run_candidate(candidate, cfg, dataset, store.dir, sorted(reasons))
        except Exception as exc:  # one failing candidate is recorded and the search goes on
            rows = [failed_row(candidate, exc)]
        for row in rows:
            store.append(row)
    remeasure_interleaved(cfg, store)
    return write_report(store.dir, store.rows(), primary_key(cfg), cfg.portability.objective)


def remeasure_interleaved(cfg: Config, store: RunStore) -> None:
    """Time every finished candidate's primary artifact again, interleaved, so the front compares them
    under the same machine conditions (noise between windows can reach 2x on shared machines)."""
    import dataclasses

    from portable_deblur.measure import measure_interleaved

    key = primary_key(cfg)
    rows = [r for r in store.rows() if r.status == "ok" and key in r.latency]
    if cfg.measure.interleaved_rounds < 1 or len(rows) < 2:
        return
    paths = [store.dir / r.artifacts["primary"] for r in rows]
    stats = measure_interleaved(paths, cfg.measure, cfg.measure.threads[0], cfg.measure.interleaved_rounds)
    for row, extra in zip(rows, stats):
        store.append(dataclasses.replace(row, latency={**row.latency, key: {**row.latency[key], **extra}}))


def summary(rows: Sequence[ResultRow], front: Sequence[ResultRow], resolution: str) -> str:
    """A plain-text table of every candidate, front marked with '*'."""
    front_ids = {r.id for r in front}
    lines = [f"{'':2}{'candidate':52} {'PSNR':>7} {'gain':>6} {'ms@' + resolution:>15}  status"]
    for r in rows:
        lat = r.latency.get(resolution, {})
        ms = lat.get("interleaved_median_ms", lat.get("median_ms", float("nan")))
        mark = "*" if r.id in front_ids else " "
        lines.append(f"{mark:2}{r.id:52} {r.psnr_tflite:7.2f} {r.psnr_gain:+6.2f} {ms:15.1f}  {r.status} {r.error[:70]}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg, candidates, violations, store = prepare(args)
        front = run_search(cfg, candidates, violations, store)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    resolution = primary_key(cfg)
    print(summary(store.rows(), front, resolution))
    print(f"\nresults: {store.dir}/results.csv  front: {store.dir}/pareto.csv  plot: {store.dir}/pareto.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
