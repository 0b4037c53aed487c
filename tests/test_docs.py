"""The README and docs/ stay true: every command names a real space, key and script, every config key they
mention exists, every link resolves, and the README stays a front door."""
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from portable_deblur.config.schema import Config

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SECTIONS = ("data", "train", "measure", "portability", "optimize", "search", "rank", "run", "log")


def _text(page: Path) -> str:
    return page.read_text()


def _schema_key(key: str) -> bool:
    """Whether ``section.field`` is a config key (``model.*`` / ``grid.*`` are builder arguments)."""
    section, _, name = key.partition(".")
    if section in ("model", "grid"):
        import inspect

        from portable_deblur.models.build import ARCHITECTURES

        return any(name in inspect.signature(a.build).parameters for a in ARCHITECTURES.values())
    node = OmegaConf.structured(Config).get(section)
    return node is not None and name.split(".")[0] in node


def test_the_readme_is_a_front_door():
    text = _text(REPO / "README.md")
    assert len(text) < 8000, len(text)
    assert "pip install -e . && python -m portable_deblur.search space=upsampling" in text
    assert "pip install -e '.[test]' && python -m pytest" in text
    assert not re.search(r"[A-Z_]{8,}", text.replace("PORTABLE_DEBLUR_TEST_POSTGRES", "")), "placeholder left"
    ci = (REPO / ".ci" / "run").read_text()
    assert "TEST_COMMAND=\"pip install -e '.[test]' && python -m pytest\"" in ci  # CI runs the README's command


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_images_resolve(page):
    for target in re.findall(r"\]\(([^)#]+)\)", _text(page)):
        if not target.startswith("http"):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_commands_name_real_spaces_keys_and_scripts(page):
    from portable_deblur.config.load import available_spaces
    from portable_deblur.handoff.bundle import KEYS

    text = _text(page)
    for script in re.findall(r"python (benchmarks/\w+\.py)", text):
        assert (REPO / script).is_file(), f"{page.name}: {script} does not exist"
    for cmd in re.findall(r"python -m portable_deblur\.search ([^`\n]*)", text):
        for arg in re.findall(r"([\w.]+)=", cmd):
            if arg == "space":
                continue
            assert _schema_key(arg), f"{page.name}: {arg!r} in {cmd!r} is no config key"
        for space in re.findall(r"space=([\w./]+)", cmd):
            assert space in available_spaces() or (REPO / space).is_file(), f"{page.name}: no space {space!r}"
    for cmd in re.findall(r"python -m portable_deblur\.handoff ([^`\n]*)", text):
        for arg in re.findall(r"(\w+)=", cmd):
            assert arg in KEYS, f"{page.name}: handoff has no {arg!r}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_config_key_mentioned_exists(page):
    keys = set(re.findall(rf"`((?:{'|'.join(SECTIONS)})\.[a-z_]+)", _text(page)))
    missing = sorted(k for k in keys if not _schema_key(k))
    assert not missing, f"{page.name} mentions keys that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_points_at_issues(page):
    assert not re.search(r"\bissue \d+|closing note", _text(page), re.I)
