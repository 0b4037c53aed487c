"""The machine and libraries a run's numbers came from, so a difference between two runs can be explained.

Same seed, same numbers holds on the same machine with the same library versions: TensorFlow's CPU kernels
(oneDNN) pick code paths by the CPU's instruction sets, and LiteRT's XNNPACK kernels by the CPU and thread
count, so two CPU models can differ in the second decimal of a PSNR. Written to ``config.yaml`` and, per
worker, into the study; handoff manifests copy the entry of the worker that made the artifact.
"""
import os
import platform
from importlib import metadata
from typing import Dict, Sequence

LIBRARIES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy", "optuna")
_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "neon", "asimd")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that compute bfloat16 dot products natively


def _cpu() -> Dict[str, str]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model") and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
    except OSError:  # not Linux: the platform string is what there is
        pass
    return {"model": model, "isa": " ".join(f for f in _ISA_FLAGS if f in flags)}


def native_bfloat16(isa: str = None) -> bool:
    """Whether this CPU computes bfloat16 natively (``BF16_FLAGS`` among its instruction sets ``isa``)."""
    flags = set((_cpu()["isa"] if isa is None else isa).split())
    return any(f in flags for f in BF16_FLAGS)


def training_precision(configured: str, isa: str = None) -> str:
    """The Keras policy ``train.precision`` means here: ``auto`` is mixed_bfloat16 on a CPU-only host whose CPU
    computes bfloat16 natively (measured on an AMD EPYC with avx512_bf16: the default U-Net's step 1.43x
    faster, train.fit 1.39x, the same validation PSNR; benchmarks/training_throughput.py), float32 elsewhere (on GPU hosts
    and CPUs that would emulate bfloat16, which is slower than float32)."""
    if configured != "auto":
        return configured
    return "mixed_bfloat16" if native_bfloat16(isa) and not _has_gpu() else "float32"


def _has_gpu() -> bool:
    from portable_deblur.backend import tf

    return bool(tf.config.list_physical_devices("GPU"))


def library_versions(names: Sequence[str] = LIBRARIES) -> Dict[str, str]:
    """Installed version of each distribution (``not installed`` where missing)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe() -> Dict[str, object]:
    """CPU model and instruction sets, cores, OS, Python, library versions, oneDNN / XNNPACK settings."""
    return {
        "cpu": _cpu(), "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
        "libraries": library_versions(),
        # oneDNN is on by default in TF >= 2.9 on x86; TF_ENABLE_ONEDNN_OPTS=0 turns it off (and changes numbers).
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86)"),
        "tf_deterministic_ops": "on (train.jit_compile=false)",
        "xnnpack": "LiteRT default CPU delegate; threads as measure.threads",
        "native_bfloat16": native_bfloat16(),
        "train_precision_auto": training_precision("auto"),  # what train.precision=auto trains in here
    }
