"""Old spellings of public names, kept for one release with a warning."""

import warnings


def warn_renamed(old, new, stacklevel=3):
    """Emits the `DeprecationWarning` of a renamed name or value."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


class DeprecatedAlias:
    """A class attribute that reads another one, with a `DeprecationWarning`.

    Example:

    >>> class Distiller:
    ...     UNLABELED = -1
    ...     UNLABELLED = DeprecatedAlias("UNLABELED")
    """

    def __init__(self, new):
        self.new = new
        self.old = None

    def __set_name__(self, owner, name):
        self.old = name

    def __get__(self, instance, owner):
        warn_renamed(f"{owner.__name__}.{self.old}", f"{owner.__name__}.{self.new}")
        return getattr(owner if instance is None else instance, self.new)

    def __set__(self, instance, value):
        warn_renamed(f"{type(instance).__name__}.{self.old}", f"{type(instance).__name__}.{self.new}")
        setattr(instance, self.new, value)


def module_aliases(module_name, aliases):
    """A module `__getattr__` that serves `aliases` (old -> new name) with a
    `DeprecationWarning`.

    Example: in a module, `__getattr__ = module_aliases(__name__, {"OLD": "NEW"})`.
    """
    import sys

    def __getattr__(name):
        if name in aliases:
            warn_renamed(f"{module_name}.{name}", f"{module_name}.{aliases[name]}")
            return getattr(sys.modules[module_name], aliases[name])
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
