"""A user's physics in runs: import paths and the description a run records.

`Config.model.physics` (flat name `physics`) names a built-in system ("pendulum", "diffusion", "hamiltonian") or an
import path "package.module:Name" whose Name is a `PhysicsModel` subclass (constructed with no arguments), a
`PhysicsModel` instance, or a function of no arguments that returns one. The path is stored in a run's config.json,
so that `eval`, `predict` and `--resume` rebuild the same model. A model passed as an object
(`fit(..., physics=Spring(k_max=5))`) is recorded by `describe`; loading the run checks that the rebuilt (or again
passed) model has the same description.
"""

from __future__ import annotations

import importlib
import os
import re
import sys

import numpy as np

from jaxphysvae.errors import ConfigError
from jaxphysvae.physics.base import PhysicsModel

BUILT_IN = ("pendulum", "diffusion", "hamiltonian")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def check_spec(spec: str) -> str:
    """`spec` if it is a built-in name or has the form of an import path (the import happens later)."""
    if spec in BUILT_IN or (isinstance(spec, str) and _IMPORT_PATH.match(spec)):
        return spec
    raise ConfigError(f"unknown physics {spec!r}; expected one of {', '.join(BUILT_IN)} or an import path "
                      f"package.module:ClassName of a PhysicsModel of your own")


def is_import_path(spec: str) -> bool:
    """Whether a (checked) physics spec names a user's model rather than a built-in one."""
    return ":" in spec


def load(spec: str) -> PhysicsModel:
    """The PhysicsModel that import path `spec` ("package.module:Name") names: Name is a PhysicsModel subclass
    (constructed with no arguments), an instance, or a function of no arguments returning one. The current
    directory is searched as Python's own `python -m` does.

    Raises:
      ConfigError: the module or the name cannot be imported, or what it names is not a PhysicsModel.
    """
    check_spec(spec)
    module_name, _, attribute = spec.partition(":")
    try:
        target = _import(module_name)
    except ImportError as e:
        raise ConfigError(f"physics {spec!r}: cannot import module {module_name!r} ({e}); is it on PYTHONPATH or in "
                          f"the current directory?") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"physics {spec!r}: {module_name} has no attribute {attribute!r}") from None
        target = getattr(target, part)
    try:
        if isinstance(target, type) and issubclass(target, PhysicsModel):
            model = target()
        elif isinstance(target, PhysicsModel):
            model = target
        elif callable(target):
            model = target()
        else:
            model = target
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"physics {spec!r}: calling {attribute} with no arguments failed: "
                          f"{type(e).__name__}: {e}") from None
    if not isinstance(model, PhysicsModel):
        raise ConfigError(f"physics {spec!r} gave a {type(model).__name__}, not a jaxphysvae PhysicsModel")
    return model


def import_path(physics: PhysicsModel) -> str | None:
    """The import path "module:Class" of a model's class, or None when it has none (a class defined in __main__ or
    inside a function)."""
    cls = type(physics)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


def _import(module_name: str):
    """Import a module, also from the current directory when the console script's path lacks it."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        top = module_name.split(".")[0]
        if e.name != top or "" in sys.path or os.getcwd() in sys.path:
            raise
    sys.path.append(os.getcwd())
    return importlib.import_module(module_name)


_SKIP = object()


def describe(physics: PhysicsModel) -> dict:
    """What identifies a physics model in a run record: its class, interface sizes, range, names, and its plain
    attributes (numbers, strings, booleans and tuples of them), as JSON values."""
    def plain(v):
        if isinstance(v, np.generic):  # a numpy scalar: its Python value
            v = v.item()
        if isinstance(v, (bool, int, float, str)) or v is None:
            return v
        if isinstance(v, np.ndarray) or isinstance(v, (tuple, list)):
            items = [plain(u) for u in (v.tolist() if isinstance(v, np.ndarray) else v)]
            return _SKIP if any(i is _SKIP for i in items) else items
        return _SKIP

    attributes = {}
    for name, value in sorted(vars(physics).items()):
        value = plain(value)
        if not name.startswith("_") and value is not _SKIP:
            attributes[name] = value
    cls = type(physics)
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "attributes": attributes}


def differences(recorded: dict, physics: PhysicsModel) -> list[str]:
    """How `physics` differs from a recorded description (an empty list when it does not)."""
    now = describe(physics)
    out = []
    if recorded.get("class") != now["class"]:
        out.append(f"class {now['class']} (recorded: {recorded.get('class')})")
    then = recorded.get("attributes", {})
    for name in sorted(set(then) | set(now["attributes"])):
        if then.get(name) != now["attributes"].get(name):
            out.append(f"{name} = {now['attributes'].get(name)!r} (recorded: {then.get(name)!r})")
    return out
