"""Run a patch on an Airflow module once it is imported: airflow_local_settings runs while `airflow` itself is
still importing, too early to import the module there. A patch that no longer fits raises: the import fails, and
with it the process (never a log line and a process running unpatched)."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys


def after_import(module_name: str, patch) -> None:
    """Run `patch(module)` once `module_name` is imported (now, if it already is)."""
    if module_name in sys.modules:
        patch(sys.modules[module_name])
        return
    for finder in sys.meta_path:
        if isinstance(finder, _AfterImport) and finder.module_name == module_name:
            if patch not in finder.patches:
                finder.patches.append(patch)  # a second patch of the same module runs after the first
            return
    sys.meta_path.insert(0, _AfterImport(module_name, patch))


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, module_name: str, patch):
        self.module_name, self.patches = module_name, [patch]

    def find_spec(self, fullname, path, target=None):
        if fullname != self.module_name:
            return None
        sys.meta_path.remove(self)  # find the real spec, once
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader, patches = spec.loader, self.patches
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            for patch in patches:
                patch(module)

        loader.exec_module = exec_module
        return spec
