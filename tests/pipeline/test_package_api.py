"""Every capability package of pipeline/ lists its API in ``__all__``, every listed name
resolves, and the packages whose names load on first use stay cheap to import."""

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "pipeline.correct",
    "pipeline.export",
    "pipeline.inference",
    "pipeline.io",
    "pipeline.proofread",
    "pipeline.runner",
    "pipeline.seg",
    "pipeline.stages",
    "pipeline.synthetic",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_listed_name_resolves(name):
    package = importlib.import_module(name)
    assert package.__all__, f"{name} lists no API"
    missing = [n for n in package.__all__ if getattr(package, n, None) is None]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_a_stage_imports_neither_torch_nor_the_other_stages():
    loaded = _modules_after("from pipeline.stages import run_fragments")
    assert "pipeline.stages.fragments" in loaded
    assert "torch" not in loaded
    assert "pipeline.stages.correct" not in loaded and "pipeline.stages.predict" not in loaded


def test_seg_and_the_patch_grid_load_only_what_is_asked():
    loaded = _modules_after("import pipeline.seg.ids; from pipeline.inference import PatchGrid")
    assert "pipeline.seg.watershed" not in loaded and "scipy" not in loaded
    assert "torch" not in loaded


def test_a_name_that_is_not_listed_is_an_attribute_error():
    import pipeline.seg

    with pytest.raises(AttributeError, match="no_such_name"):
        pipeline.seg.no_such_name  # noqa: B018
