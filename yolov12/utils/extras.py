"""Optional parts of the platform, and the one-line error that names the extra installing a missing one.

``pip install yolov12-platform`` installs the library alone; the layers above it come with extras (``[ray]``,
``[serve]``, ``[mlflow]``, ``[openvino]``, ``[demo]``, ``[s3]``; ``[all]`` for every one; see the README, "Install").
A package or feature that needs an extra checks for it before its first import of that extra's packages::

    require("ray", extra="ray", feature="pipelines")
    # MissingExtraError: pipelines needs Ray: pip install 'yolov12-platform[ray]'

    with extra_imports("s3", "s3:// datasets"):
        import boto3

:func:`require` only looks for the module (``importlib.util.find_spec``), so a check costs nothing and imports
nothing: ``serve`` can check for Ray without importing it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

DISTRIBUTION = "yolov12-platform"

# Import name -> the name users know the package by (the one line names it); other modules are named as imported.
PACKAGE_NAMES = {
    "ray": "Ray", "mlflow": "MLflow", "gradio": "Gradio", "openvino": "OpenVINO", "nncf": "NNCF",
    "fastapi": "FastAPI", "python_multipart": "python-multipart", "optuna": "Optuna", "botocore": "boto3",
}


class MissingExtraError(ImportError):
    """A feature needs a package that only an extra installs; ``str(error)`` is one line naming the extra.

    Attributes:
        feature: what was asked for (``pipelines``, ``OpenVINO export``).
        package: the missing package as users know it (``Ray``).
        extra: the extra that installs it (``ray``).
    """

    def __init__(self, feature: str, package: str, extra: str, module: str | None = None) -> None:
        self.feature, self.package, self.extra = feature, package, extra
        super().__init__(f"{feature} needs {package}: {install_hint(extra)}", name=module)


def install_hint(extra: str) -> str:
    """``pip install 'yolov12-platform[<extra>]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def package_name(module_name: str) -> str:
    """``ray.train`` -> ``Ray``: the display name of a module's top-level package."""
    top = module_name.split(".")[0]
    return PACKAGE_NAMES.get(top, top)


def is_installed(module_name: str) -> bool:
    """Whether ``module_name`` can be imported, found without importing it (parents of a dotted name are imported)."""
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):  # parents first: ``ray.serve`` may be imported while ``ray`` is gone
        try:
            if importlib.util.find_spec(".".join(parts[:depth])) is None:
                return False
        except ModuleNotFoundError:  # a parent package of a dotted name is missing
            return False
        except ValueError:  # already imported, without a spec (e.g. ``__main__``)
            continue
    return True


def require(module_name: str, extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` unless ``module_name`` is installed.

    Args:
        module_name: the import name to look for (``ray``, ``mlflow``).
        extra: the extra of ``yolov12-platform`` that installs it (``ray``).
        feature: what needs it, the subject of the message (``pipelines``).

    Raises:
        MissingExtraError: ``"<feature> needs <package>: pip install 'yolov12-platform[<extra>]'"``.

    Example:
        >>> require("ray", extra="ray", feature="pipelines")  # doctest: +SKIP
        Traceback (most recent call last):
        MissingExtraError: pipelines needs Ray: pip install 'yolov12-platform[ray]'
    """
    if not is_installed(module_name):
        raise MissingExtraError(feature, package_name(module_name), extra, module=module_name)


@contextmanager
def extra_imports(extra: str, feature: str) -> Iterator[None]:
    """Turn a missing module imported in this block into :class:`MissingExtraError` naming ``extra``.

    Only a module that is absent (``ModuleNotFoundError`` with its name) is translated; any other import failure of
    an installed package propagates unchanged.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None:
            raise
        raise MissingExtraError(feature, package_name(exc.name), extra, module=exc.name) from None
