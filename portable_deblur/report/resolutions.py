"""Whether the front would differ at another measured resolution: the MediaTek paper measured at 1280x720
because latency does not scale with pixels alike for every op (its Fig. 4), so a small benchmark size can
order networks differently from the frames an app runs. For each measured size: the front it would give, the
latency order's Kendall tau against the ranked size's, and the pairs it orders the other way beyond noise."""
import dataclasses
import html
from typing import Dict, List, Sequence, Tuple

from portable_deblur.rank import Objectives, competing, faster, front_rows, latency_ratio
from portable_deblur.records import ResultRow
from portable_deblur.latency import LatencyKey
from portable_deblur.report.rungs import kendall_tau


@dataclasses.dataclass(frozen=True)
class SizeOrder:
    """The competing rows judged at one measured latency key."""

    key: str
    ranked: bool  # the key the run's front ranks by
    order: Tuple[str, ...]  # competing ids, fastest first
    front: Tuple[str, ...]  # the noise-aware front at this key, fastest first
    tau: float  # Kendall tau of the latency estimates against the ranked key's (1: the same order)
    flips: Tuple[Tuple[str, str], ...]  # (a, b): a faster beyond noise here, b faster beyond noise when ranked


def _at(rows: Sequence[ResultRow], spec: Objectives, key: str) -> Tuple[Objectives, List[ResultRow]]:
    """The objectives and rows judged at ``key``; a duel was timed at the ranked key only, so elsewhere each
    row is judged by its own paired ratios."""
    if key == spec.latency:
        return spec, list(rows)
    return dataclasses.replace(spec, latency=key), [dataclasses.replace(r, duels=()) for r in rows]


def size_orders(rows: Sequence[ResultRow], spec: Objectives) -> List[SizeOrder]:
    """One ``SizeOrder`` per latency key every competing row measured (the ranked key first), at the ranked
    key's thread count; empty when only one size was measured."""
    _, compete = competing(rows, spec)
    threads = LatencyKey.parse(spec.latency).threads
    keys = [k for k in dict.fromkeys(k for r in compete for k in r.latency)
            if LatencyKey.parse(k).threads == threads and all(k in r.latency for r in compete)]
    keys = sorted(keys, key=lambda k: (k != spec.latency, LatencyKey.parse(k).pixels))
    if len(keys) < 2 or len(compete) < 2:
        return []
    ranked_ms = [r.best_ms(spec.latency) for r in compete]
    out = []
    for key in keys:
        at_spec, at_rows = _at(compete, spec, key)
        _, front = front_rows(at_rows, at_spec)
        ms = [r.best_ms(key) for r in at_rows]
        flips = tuple((a.id, b.id) for i, a in enumerate(at_rows) for j, b in enumerate(at_rows)
                      if i != j and faster(latency_ratio(a, b, at_spec), spec.latency_margin) > 0
                      and faster(latency_ratio(compete[i], compete[j], spec), spec.latency_margin) < 0)
        out.append(SizeOrder(key, key == spec.latency, tuple(r.id for _, r in sorted(zip(ms, at_rows), key=lambda p: p[0])),
                             tuple(r.id for r in front), kendall_tau(ms, ranked_ms), flips))
    return out


def resolution_section(rows: Sequence[ResultRow], spec: Objectives, names: Dict[str, str]) -> List[str]:
    """The report's "Front by resolution": per measured size, its front and latency order side by side, in
    words whether the order differs from the ranked size's and by how much."""
    from portable_deblur.report.table import html_table

    orders = size_orders(rows, spec)
    if not orders:
        return []
    ranked = orders[0]
    said = []
    for o in orders[1:]:
        same = set(o.front) == set(ranked.front)
        flips = "; ".join(f"{names.get(a, a)} is faster than {names.get(b, b)} here but slower at {ranked.key}"
                          for a, b in o.flips)
        said.append(f"At {o.key} the front {'is the same' if same else 'differs'} "
                    f"({len(o.front)} point(s){'' if same else ': ' + ', '.join(names.get(i, i) for i in o.front)}); "
                    f"its latency order has Kendall tau {o.tau:+.2f} against {ranked.key}'s"
                    + (f", and {len(o.flips)} pair(s) swap beyond noise: {flips}." if o.flips else
                       ", with no pair ordered the other way beyond noise."))
    by_id = {r.id: r for r in rows}
    table = [{"artifact": names.get(rid, rid),
              **{c: v for o in orders for c, v in ((f"ms@{o.key}", by_id[rid].best_ms(o.key)),
                                                   (f"rank@{o.key}", o.order.index(rid) + 1),
                                                   (f"front@{o.key}", "*" if rid in o.front else ""))}}
             for rid in ranked.order]
    columns = ["artifact"] + [c for o in orders for c in (f"ms@{o.key}", f"rank@{o.key}", f"front@{o.key}")]
    return [f"<h2>Front by resolution</h2><p>The front ranks by {html.escape(ranked.key)} (search.latency: the "
            "largest measured size, the frames an app runs). Latency does not scale with pixels alike for every "
            "op, so a smaller benchmark size can order networks differently. "
            + html.escape(" ".join(said)) + " Milliseconds at the other sizes are each trial's own paired "
            "estimate (the final re-timing and the duels ran at the ranked size).</p>",
            "<div class='scroll'>" + html_table(table, columns, fmt={c: ".1f" for c in columns if c.startswith("ms@")})
            + "</div>"]
