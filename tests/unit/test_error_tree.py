"""Every exception class diffsvc defines derives from diffsvc.errors.DiffsvcError, so the CLI
can turn any of them into one line and its exit status."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import diffsvc
import workers
from diffsvc.errors import DiffsvcError


def _modules():
    for package in (diffsvc, workers):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                yield importlib.import_module(info.name)


def test_every_exception_diffsvc_defines_is_a_diffsvc_error() -> None:
    defined = [(m.__name__, name, cls) for m in _modules()
               for name, cls in inspect.getmembers(m, inspect.isclass)
               if cls.__module__ == m.__name__ and issubclass(cls, BaseException)]
    assert len(defined) >= 10  # the walk found the tree
    outside = [f"{mod}.{name}" for mod, name, cls in defined if not issubclass(cls, DiffsvcError)]
    assert outside == []
