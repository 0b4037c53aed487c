"""How far a multi-fidelity run's cheap ranking can be trusted (``search.rungs``): each rung's PSNR ranking
against the next among the candidates it promoted (Kendall tau), the front's hypervolume against the
training steps spent so far, and the candidates a rung dropped that a full run's front kept."""
from typing import Dict, List, Optional, Sequence

from portable_deblur.rank import Objectives, front_hypervolume, hv_reference
from portable_deblur.records import ResultRow


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (scipy) between two scorings of the same items; NaN for fewer than two items or a
    constant scoring."""
    from scipy.stats import kendalltau

    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def _float_rows(history: Sequence[ResultRow]) -> List[ResultRow]:
    return [r for r in history if r.optimization == "fp32" and r.status == "ok"]


def rung_agreement(history: Sequence[ResultRow], rungs: Sequence[int]) -> List[Dict]:
    """Per rung k below the top: candidates trained to it, how many went on, and Kendall tau between their
    PSNR at rung k and at rung k+1 (NaN with fewer than two)."""
    rows, out = _float_rows(history), []
    for k in range(len(rungs) - 1):
        here = {r.id: r for r in rows if r.rung == k}
        there = {r.id: r for r in rows if r.rung == k + 1}
        both = sorted(set(here) & set(there))
        tau = kendall_tau([here[i].ranked_psnr() for i in both], [there[i].ranked_psnr() for i in both])
        out.append({"rung": f"{k} -> {k + 1}", "steps": f"{rungs[k]} -> {rungs[k + 1]}", "trained": len(here),
                    "promoted": len(both), "kendall_tau_psnr": tau})
    return out


def hypervolume_by_steps(history: Sequence[ResultRow], spec: Objectives, rungs: Sequence[int],
                         reference: Optional[Sequence[float]] = None) -> List[Dict]:
    """After each rung: training steps spent so far (every candidate's steps up to that rung) and the
    hypervolume of the front of what was known then (each candidate at its highest rung so far)."""
    rows = _float_rows(history)
    reference = reference or hv_reference(rows, spec)
    out = []
    for k in range(len(rungs)):
        known: Dict[str, ResultRow] = {}
        for r in sorted((r for r in rows if r.rung <= k), key=lambda r: r.rung):
            known[r.id] = r
        steps = sum(r.steps for r in known.values())
        out.append({"after_rung": k, "steps_so_far": steps, "candidates": len(known),
                    "hypervolume": front_hypervolume(list(known.values()), spec, reference)})
    return out


def dropped_but_kept(history: Sequence[ResultRow], rungs: Sequence[int], full_front_ids: Sequence[str]) -> List[Dict]:
    """Candidates a rung dropped (their highest rung is below the top) that a full run's front kept."""
    highest: Dict[str, int] = {}
    for r in _float_rows(history):
        highest[r.id] = max(highest.get(r.id, 0), r.rung)
    top = len(rungs) - 1
    return [{"candidate": cid, "dropped_after_rung": highest[cid], "steps": rungs[highest[cid]]}
            for cid in full_front_ids if cid in highest and highest[cid] < top]


def rungs_section(history: Sequence[ResultRow], spec: Objectives, rungs: Sequence[int],
                  full_front_ids: Optional[Sequence[str]] = None) -> List[str]:
    """The report's multi-fidelity section (HTML parts); empty without rungs."""
    from portable_deblur.report.table import html_table

    if not rungs:
        return []
    parts = [f"<h2>Rungs: how far the cheap ranking can be trusted</h2><p>Successive halving over "
             f"{list(rungs)} steps. Kendall tau compares each rung's PSNR ranking of the candidates it promoted "
             f"with their ranking after the next rung (1: same order; the count says how many it rests on).</p>",
             html_table(rung_agreement(history, rungs), ["rung", "steps", "trained", "promoted", "kendall_tau_psnr"],
                        sortable=False, fmt={"kendall_tau_psnr": "+.2f"}),
             "<p>Hypervolume of the front (dB above the blurry input x ms below 1.1x the slowest) against the "
             "training steps spent so far.</p>",
             html_table(hypervolume_by_steps(history, spec, rungs), ["after_rung", "steps_so_far", "candidates",
                                                                   "hypervolume"], sortable=False,
                        fmt={"hypervolume": ".3g"})]
    if full_front_ids is not None:
        dropped = dropped_but_kept(history, rungs, full_front_ids)
        parts.append(f"<p>Against the full run (search.compare_run): {len(dropped)} candidate(s) on its front were "
                     f"dropped by a rung here.</p>")
        if dropped:
            parts.append(html_table(dropped, ["candidate", "dropped_after_rung", "steps"], sortable=False))
    return parts
