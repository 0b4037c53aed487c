"""Measured GPU placement: which ops LiteRT's GPU accelerator takes and which it leaves to the CPU, read from
the runtime's own report -- not predicted from a table.

The ``ai-edge-litert`` wheel carries the GPU accelerator (``libLiteRtWebGpuAccelerator.so``: WebGPU over
Vulkan). It runs on any host with a Vulkan adapter, a software one included: SwiftShader, whose driver
manifest Debian's ``chromium`` ships beside its own Vulkan loader, or Mesa's lavapipe >= 25. Compiled with
GPU|CPU, the runtime prints each op it rejects ("Following operations are not supported by GPU delegate")
and "N operations will run on the GPU, and the remaining M operations will run on the CPU";
``is_fully_accelerated()`` still says True once XNNPACK takes the rest, so it is not used. The model is
compiled in a fresh subprocess: the Vulkan loader's search path must be set before the process starts.
No adapter: ``measure_placement`` returns None and the table prediction (``portability``) stands.
"""
import io
import json
import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

ENV_ICD = "PORTABLE_DEBLUR_VK_ICD"  # a Vulkan driver manifest to use, or "none" to skip the measurement
# First present wins. Lavapipe first: it computes in fp16 where the model allows, as a phone's GPU does;
# SwiftShader computes in fp32. bookworm-backports' Mesa 25.0 (what .ci/run installs) names lavapipe's
# manifest lvp_icd.json; bookworm's own 22.3 (lvp_icd.x86_64.json) is refused by Dawn, so it is not listed.
ICD_CANDIDATES = ("/usr/share/vulkan/icd.d/lvp_icd.json",  # Mesa lavapipe, Mesa >= 25 (fp16)
                  "/usr/lib/chromium/vk_swiftshader_icd.json")  # Debian's chromium (fp32)
# What each software adapter computes float models in (a manifest's stem -> precision).
ADAPTER_PRECISION = {"lvp_icd": "fp16", "vk_swiftshader_icd": "fp32"}
_SPLIT = re.compile(r"(\d+) operations will run on the GPU, and the remaining (\d+) operations will run on the CPU")
_REJECTED = re.compile(r"^([A-Z][A-Z0-9_]+): (.+?)\s*$")


@dataclass(frozen=True)
class GpuPlacement:
    """Where LiteRT's GPU accelerator put one model's ops on this host's Vulkan ``adapter``."""

    adapter: str
    gpu_ops: int
    cpu_ops: int
    rejected: Dict[str, str] = field(default_factory=dict)  # op -> the runtime's first reason

    @property
    def fully_delegated(self) -> bool:
        return self.cpu_ops == 0 and not self.rejected


def adapter_precision(icd: Optional[str]) -> str:
    """The precision the adapter behind manifest ``icd`` (a path or its stem) computes float models in
    ("" when unknown)."""
    return ADAPTER_PRECISION.get(Path(icd).stem, "") if icd else ""


def vulkan_icd() -> Optional[str]:
    """The Vulkan driver manifest to use: ``$PORTABLE_DEBLUR_VK_ICD``, else the first known one present."""
    chosen = os.environ.get(ENV_ICD)
    if chosen:
        return None if chosen == "none" else chosen
    return next((p for p in ICD_CANDIDATES if Path(p).is_file()), None)


def parse_report(text: str, ops: int, adapter: str) -> GpuPlacement:
    """The placement the runtime printed (``text``: the child's stderr) for a model of ``ops`` operators: no
    split line means every op went to the GPU."""
    split = _SPLIT.search(text)
    if split is None:
        return GpuPlacement(adapter, ops, 0)
    rejected: Dict[str, str] = {}
    listing = text[text.find("not supported by GPU delegate"):split.start()].splitlines()[1:]
    for line in listing:
        match = _REJECTED.match(line.strip())
        if match:  # the reason without the tensor name the runtime appends
            rejected.setdefault(match.group(1), match.group(2).split(". ")[0].rstrip(".") + ".")
    return GpuPlacement(adapter, int(split.group(1)), int(split.group(2)), dict(sorted(rejected.items())))


def _child_env(icd: str) -> Dict[str, str]:
    """The child's environment: the driver manifest, and the Vulkan loader beside it (chromium ships its own
    ``libvulkan.so.1`` there; without it Dawn finds no adapter)."""
    loader = os.pathsep.join(filter(None, [str(Path(icd).parent), os.environ.get("LD_LIBRARY_PATH")]))
    return {**os.environ, "VK_ICD_FILENAMES": icd, "LD_LIBRARY_PATH": loader}


def measure_placement(path: Union[str, Path], ops: Optional[int] = None,
                      timeout: float = 300.0) -> Optional[GpuPlacement]:
    """Compile ``path`` with LiteRT's GPU|CPU accelerators in a subprocess and read the placement (``ops``: its
    operator count, read from the file when not given); None when this host has no Vulkan adapter the
    accelerator accepts."""
    from portable_deblur.deploy.flatbuffer import op_inventory

    icd = vulkan_icd()
    if icd is None or not Path(icd).is_file():
        return None
    proc = subprocess.run([sys.executable, "-m", "portable_deblur.deploy.gpu", str(path)], env=_child_env(icd),
                          capture_output=True, text=True, timeout=timeout)
    if "No adapters found" in proc.stderr:
        return None
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.split()[-60:])
        raise RuntimeError(f"LiteRT's GPU accelerator could not compile {path} on {icd}: {tail}")
    return parse_report(proc.stderr, len(op_inventory(path)) if ops is None else ops, Path(icd).stem)


class GpuPredictor:
    """``predict(x) -> y`` through LiteRT's GPU accelerator (GPU|CPU: what a phone runs, rejected ops on its
    CPU) in its default precision, in a child process that keeps the compiled model; frames go over pipes as
    ``.npy`` bytes. Use as a context manager; ``available()`` says whether this host has an adapter."""

    def __init__(self, path: Union[str, Path]):
        icd = vulkan_icd()
        if icd is None:
            raise RuntimeError("no Vulkan adapter on this host for LiteRT's GPU accelerator")
        self.proc = subprocess.Popen([sys.executable, "-m", "portable_deblur.deploy.gpu", str(path), "--serve"],
                                     env=_child_env(icd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)

    @staticmethod
    def available() -> bool:
        return vulkan_icd() is not None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _send(self.proc.stdin, np.ascontiguousarray(x, np.float32))
        y = _receive(self.proc.stdout)
        if y is None:
            raise RuntimeError(f"LiteRT's GPU accelerator process ended (exit {self.proc.wait()})")
        return y

    def __enter__(self) -> "GpuPredictor":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _send(stream, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    stream.write(struct.pack("<Q", buf.tell()) + buf.getvalue())
    stream.flush()


def _receive(stream) -> Optional[np.ndarray]:
    head = stream.read(8)
    if len(head) < 8:
        return None
    return np.load(io.BytesIO(stream.read(struct.unpack("<Q", head)[0])), allow_pickle=False)


def _serve(path: str) -> None:
    """Child: compile once, then answer every frame on stdin with the model's output on stdout."""
    out = os.fdopen(os.dup(1), "wb")  # the frame channel: the runtime's own logs go to fd 1 too, so fd 1
    os.dup2(2, 1)  # becomes stderr before anything is loaded
    from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator

    model = CompiledModel.from_file(path, hardware_accel=HardwareAccelerator.GPU | HardwareAccelerator.CPU)
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    while True:
        x = _receive(sys.stdin.buffer)
        if x is None:
            return
        inputs[0].write(x)
        model.run_by_index(0, inputs, outputs)
        _send(out, outputs[0].read(x.size, np.float32).reshape(x.shape))


def main(argv=None) -> None:
    """Child process: compile one model with GPU|CPU (the runtime reports the split on stderr); with
    ``--serve``, then run frames (``GpuPredictor``)."""
    args = sys.argv[1:] if argv is None else argv
    if "--serve" in args:
        _serve(args[0])
        return
    from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator

    model = CompiledModel.from_file(args[0], hardware_accel=HardwareAccelerator.GPU | HardwareAccelerator.CPU)
    print(json.dumps({"created": True, "signatures": model.get_num_signatures()}))


if __name__ == "__main__":
    main()
