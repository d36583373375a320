"""Every name a package exports resolves (the lazy exports cannot go stale silently)."""
import importlib

import pytest


@pytest.mark.parametrize("package", ["ltr", "recall", "eval"])
def test_every_export_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        module.nope
