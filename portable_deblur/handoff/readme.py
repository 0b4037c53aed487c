"""The README.md of a handoff bundle: what an app engineer needs to feed the network and check it."""


def app_readme(row, main: dict, sizes: dict, multiple: int) -> str:
    lat = next(iter(row.latency.items()), ("-", {}))
    _, h, w, c = main["input"]["shape"]
    listing = "".join(f"- `{e['file']}`: input `[1, {e['input']['shape'][1]}, {e['input']['shape'][2]}, {c}]` for "
                      f"{key} frames{' (pad to ' + e['padded_to'] + ')' if 'padded_to' in e else ''}; median "
                      f"{e['latency']['median_ms']:.1f} ms at {e['latency_key']} on the search machine\n"
                      for key, e in sizes.items())
    other = ("the files below are built for your sizes:\n" + listing if sizes else
             f"the file is built for exactly {h}x{w}; `python -m portable_deblur.handoff ... resolution=HxW` "
             f"exports, verifies and times one at your size.\n")
    return f"""# {row.id}

Image deblurring network for on-device use ({row.arch}, {row.optimization}). PSNR on validation
{row.psnr_tflite:.2f} dB (the blurry input scores {row.psnr_blurry:.2f} dB); median latency
{lat[1].get('median_ms', float('nan')):.1f} ms at {lat[0]} (height x width, threads) with LiteRT on the machine
that ran the search -- time it on your phone.

## Sizes
`model.tflite` takes `[1, {h}, {w}, {c}]`; {other}
## Feeding it
- Input `blurry`: float32 `[1, {h}, {w}, {c}]`, RGB, each value = pixel / 255 (range [0, 1]), NHWC.
- Output `sharp`: float32, same shape; pixel = clip(value, 0, 1) * 255.
- Other frame sizes: pad height and width up to a multiple of {multiple} (edge-replicate the last row/column),
  run, then crop the output back.
- Quantization: input and output stay float32 (the converter adds QUANTIZE/DEQUANTIZE inside the model
  for int8 variants); if you convert to integer I/O yourself, use the scale and zero point in
  `manifest.json` (`real = scale * (q - zero_point)`).

## Checking your integration
`golden_input.npy` through `model.tflite` must give `golden_output.npy` (within `manifest.json`'s
`golden.atol`), and likewise each `model_<H>x<W>.tflite` with its `golden_*_<H>x<W>.npy`. `python -m portable_deblur.handoff verify=<this folder>` does exactly that with LiteRT and
checks every file's SHA-256 against `manifest.json`.

## Where it falls back
`manifest.json` lists every op (`op_inventory`) and, per accelerator delegate, the ops it would reject and run
on the CPU (`delegate_fallback`) -- a rejected op wrecks latency on that delegate.
"""
