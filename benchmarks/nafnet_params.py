"""Benchmark: parameters and MACs of the thesis's NAFNet configs, full size (issue 4).

NAFNet-C-N = width C, N NAFBlocks in total (last encoder level varies; middle 1, decoder [1, 1, 1, 1]).
Reference: the NAFNet paper's width-32 GoPro model has 17.11 M parameters and about 16 GMAC at 256x256.

    python benchmarks/nafnet_params.py
    python benchmarks/nafnet_params.py --tiny   # the smallest config only
"""
import sys

from portable_deblur.models.macs import count_macs
from portable_deblur.models.nafnet import build_nafnet

CONFIGS = [("NAFNet-32-36", 32, [1, 1, 1, 28]), ("NAFNet-16-18", 16, [1, 1, 1, 10]),
           ("NAFNet-16-9", 16, [1, 1, 1, 1]), ("NAFNet-8-9", 8, [1, 1, 1, 1])]


def main(argv=None) -> int:
    configs = CONFIGS[-1:] if "--tiny" in (sys.argv[1:] if argv is None else argv) else CONFIGS
    print(f"{'model':14} {'blocks':>6} {'params':>12} {'GMAC@256x256':>13}")
    for name, width, enc in configs:
        model = build_nafnet(width=width, enc_blocks=enc)
        blocks = sum(enc) + 1 + 4
        print(f"{name:14} {blocks:6d} {model.count_params():12,d} {count_macs(model, (256, 256)) / 1e9:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
