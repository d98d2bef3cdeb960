"""A package API that loads on first use, for the packages whose modules are imported one at a
time and must stay cheap: ``pipeline.seg`` (a worker that floods basins needs no union-find over
graphs), ``pipeline.stages`` (one stage must not import the others, nor ``predict``'s torch) and
``pipeline.inference`` (torch). Such a package sets ``__getattr__ = LazyApi(__name__, {module:
names})`` and ``__all__ = __getattr__.names``; ``from pipeline.seg import agglomerate`` then
imports ``pipeline.seg.agglomeration`` and nothing else. A function named like a module of its
package cannot be listed: once that module is imported, the package attribute is the module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import Any


class LazyApi:
    """A package's ``__getattr__``: the names of each of its modules, loaded when first asked."""

    def __init__(self, package: str, modules: Mapping[str, Sequence[str]]):
        self.package = package
        self.home = {name: module for module, names in modules.items() for name in names}

    @property
    def names(self) -> list[str]:
        return sorted(self.home)

    def __call__(self, name: str) -> Any:
        module = self.home.get(name)
        if module is None:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        return getattr(import_module(f"{self.package}.{module}"), name)
