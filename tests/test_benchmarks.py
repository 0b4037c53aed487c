"""Every benchmark runs end to end in its ``--tiny`` mode (the package's smoke scale), so a change that breaks a
benchmark fails here rather than the next time someone needs its figures. Two benchmarks have tests of their
own that check more than that they ran; those tests are named here so no benchmark goes unrun."""
import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
OWN_TEST = {  # benchmark -> the test that runs its --tiny / tiny recipe and checks its output
    "gpu_training": "tests/test_train.py::test_gpu_training_benchmark_runs_on_cpu_with_tiny_settings",
    "pretrain": "tests/test_weight_sharing.py::test_a_pretraining_recipe_chains_its_stages_and_resumes_without_training_again",
}
READS_A_RUN = {  # benchmark -> its arguments before --tiny, given the smoke run ({run})
    "fine_tuning_decision": ["{run}"],
    "gpu_placement": ["{run}"],
    "latency_under_load": ["--reuse", "{run}"],
    "optimization": ["--report", "{run}"],
    "multi_fidelity": ["upsampling", "--full={run}"],  # the smoke run is its full run (3 steps = the top rung)
    "portable_ops": ["prelu"],
    "steering": ["{run}"],
}
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_run():
    """One finished smoke-scale run of the default space, for the benchmarks that read a run."""
    from portable_deblur.config.smoke import smoke_run

    return smoke_run(["grid.upsampler=[transpose,bilinear]", "grid.activation=[relu]"])


def test_every_benchmark_has_a_tiny_mode_or_its_own_test():
    for name in SCRIPTS:
        text = (BENCHMARKS / f"{name}.py").read_text()
        assert "--tiny" in text, f"benchmarks/{name}.py has no --tiny mode"
    assert set(OWN_TEST) <= set(SCRIPTS) and set(READS_A_RUN) <= set(SCRIPTS)
    for test in OWN_TEST.values():
        path, function = test.split("::")
        assert f"def {function}(" in (BENCHMARKS.parent / path).read_text(), test


@pytest.mark.parametrize("name", [s for s in SCRIPTS if s not in OWN_TEST])
def test_a_benchmark_runs_in_its_tiny_mode(name, smoke_run, capsys):
    args = [a.format(run=smoke_run) for a in READS_A_RUN.get(name, [])]
    assert _load(name).main([*args, "--tiny"]) in (None, 0)
    assert capsys.readouterr().out.strip(), f"benchmarks/{name}.py --tiny printed no figures"
