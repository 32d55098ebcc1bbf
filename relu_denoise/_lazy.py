"""Lazy re-exports: a package's public names load their module on first use (so `reluden --help` and recipes
import neither torch, scipy nor matplotlib)."""

import importlib


def lazy_exports(package: str, exports: dict[str, list[str]]):
    """(`__getattr__`, `__all__`) for a package whose names live in its modules: exports = module -> names.
    A name must not be a module's name too (importing the module would shadow it)."""
    home = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name in home:
            return getattr(importlib.import_module(f".{home[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(home)
