"""How far a shared start's ranking can be trusted (a supernet, ``search.weight_sharing=supernet``, or the
pretrained start, ``train.init=pretrained``): each candidate's Keras PSNR straight from its path of the
shared weights against its PSNR after its own fine-tuning, and the Kendall tau between the two rankings."""
from typing import Dict, List, Sequence

from portable_deblur.records import ResultRow, equally_trained
from portable_deblur.report.rungs import kendall_tau


def sharing_rows(rows: Sequence[ResultRow]) -> List[Dict]:
    """One row per candidate that started from shared weights (its trained float model, trained most)."""
    started = equally_trained([r for r in rows if r.status == "ok" and r.optimization == "fp32"
                               and r.psnr_inherited == r.psnr_inherited])
    return [{"candidate": r.id, "started_from": r.inherited_from, "shared_steps": r.inherited_steps,
             "own_steps": r.steps, "psnr_shared": r.psnr_inherited, "psnr_fine_tuned": r.psnr_keras,
             "fine_tuning_db": r.psnr_keras - r.psnr_inherited} for r in sorted(started, key=lambda r: -r.psnr_keras)]


def sharing_section(rows: Sequence[ResultRow]) -> List[str]:
    """The report's weight-sharing section (HTML parts); empty when no candidate started from shared weights."""
    from portable_deblur.report.table import html_table

    table = sharing_rows(rows)
    if not table or not table[0]["own_steps"]:  # judged straight from the shared weights: nothing to compare
        return []
    tau = kendall_tau([t["psnr_shared"] for t in table], [t["psnr_fine_tuned"] for t in table])
    return [f"<h2>Weight sharing</h2><p>Each candidate's Keras PSNR on the validation frames straight from its "
            f"path of the shared weights ({table[0]['shared_steps']} steps of {table[0]['started_from']}, every "
            f"path trained in turn), and after its own {table[0]['own_steps']} steps of fine-tuning. Kendall tau "
            f"between the two rankings: {tau:+.2f} over {len(table)} candidates (1: the shared weights already rank "
            "them as fine-tuning does; weight-sharing rankings are known to be only moderately reliable, which is "
            "why every candidate is fine-tuned before it is compared).</p>",
            html_table(table, ["candidate", "started_from", "shared_steps", "own_steps", "psnr_shared",
                               "psnr_fine_tuned", "fine_tuning_db"],
                       fmt={"psnr_shared": ".2f", "psnr_fine_tuned": ".2f", "fine_tuning_db": "+.2f"})]
