"""The README.md of a handoff bundle: which files it holds (one per frame size: a ``.tflite`` runs only at the
input shape it was built for), how to feed one, how to get another size, and how to check an integration."""
from pathlib import Path


def _file_line(entry: dict, note: str) -> str:
    _, h, w, c = entry["input"]["shape"]
    lat = entry["latency"]
    padded = f", padded up from {entry['frames']}: pad the frame to {h}x{w} and crop the output back" \
        if "padded_to" in entry else ""
    return (f"- `{entry['file']}`: input `[1, {h}, {w}, {c}]` for {entry['frames']} frames{padded}{note}; median "
            f"{lat['median_ms']:.1f} ms at {entry['latency_key']} (height x width, threads), measured "
            f"{lat['measured']}. Golden pair: `{entry['golden_input']}` -> `{entry['golden_output']}`.\n")


def app_readme(row, main: dict, sizes: dict, multiple: int, run: Path) -> str:
    _, h, w, c = main["input"]["shape"]
    files = _file_line(main, " -- the size the search ranked networks by") + "".join(
        _file_line(e, "") for e in sizes.values())
    return f"""# {row.id}

Image deblurring network for on-device use ({row.arch}, {row.optimization}). PSNR on validation
{row.psnr_tflite:.2f} dB (the blurry input scores {row.psnr_blurry:.2f} dB). Latency below is LiteRT on the
machine that ran the search -- time it on your phone.

## Files: one per frame size
A `.tflite` file runs at exactly the input shape it was built for. This bundle holds:

{files}
## Feeding it
- Pick the file whose input shape is your frame's size.
- Input `blurry`: float32 `[1, H, W, {c}]` of that file, RGB, each value = pixel / 255 (range [0, 1]), NHWC.
- Output `sharp`: float32, same shape; pixel = clip(value, 0, 1) * 255.
- Quantization: input and output stay float32 (the converter adds QUANTIZE/DEQUANTIZE inside the model
  for int8 variants); if you convert to integer I/O yourself, use the scale and zero point in
  `manifest.json` (`real = scale * (q - zero_point)`).

## Another frame size
- A frame smaller than a file's input: edge-replicate its last row and column up to that shape, run, and crop
  the output back to the frame (it costs the whole file's time).
- Any other size: export a file at that size from the search run, verified and timed like these:
  `python -m portable_deblur.handoff run={run} candidate={row.id} resolution=HEIGHTxWIDTH`
  (this network needs height and width in multiples of {multiple}: a size that is not is exported padded up
  to one; pad your frames likewise and crop the output back).

## Checking your integration
1. Load `model.tflite` with LiteRT (`ai_edge_litert.interpreter.Interpreter`, one thread).
2. Set its input to `golden_input.npy` (float32 `[1, {h}, {w}, {c}]`, already pixel / 255) and invoke.
3. Its output must equal `golden_output.npy` within `manifest.json`'s `golden.atol`.

Likewise each file above with its own golden pair (`manifest.json` `golden.pairs`).
`python -m portable_deblur.handoff verify=<this folder>` does exactly that for every file with LiteRT and
checks every file's SHA-256 against `manifest.json`.

## Where it falls back
`manifest.json` lists every op (`op_inventory`) and, per accelerator delegate, the ops it would reject and run
on the CPU (`delegate_fallback`) -- a rejected op wrecks latency on that delegate.{_fp16(row)}
"""


def _fp16(row) -> str:
    """What would come within reach of fp16's range on a phone's GPU (it computes in fp16 whatever the file's
    dtype), from ``manifest.json`` ``fp16_range``."""
    from portable_deblur.deploy.fp16_range import risk_text

    if not row.fp16_range:
        return ""
    risk = risk_text(row.fp16_range)
    return ("\n\n## fp16 on a GPU\nA phone's GPU computes this network in fp16 (largest value 65504). "
            + (f"Checked on calibration frames: {risk}; expect wrong output there unless the GPU keeps those "
               "sums in fp32." if risk else "Checked on calibration frames at every size above: every activation "
               "and every sum inside a reduction stays within a quarter of it.") + " (`manifest.json` `fp16_range`)")
