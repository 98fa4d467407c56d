"""The Lambda asset, built without Docker: the handler package plus its pure-Python dependencies.

The staging directory mirrors what Lambda's ``/var/task`` will hold::

    serverless_app/__init__.py
    serverless_app/definitions.py
    serverless_app/chat/**            (*.py and *.json only)
    fastjsonschema/ jwt/ tenacity/ h11/ rsa/ pyasn1/ aws_lambda_powertools/
    typing_extensions.py aws_xray_sdk/ wrapt/   (+ their *.dist-info, for the licenses)

The dependencies are copied from the current interpreter's site-packages, so the asset
carries exactly the versions pinned in ``pyproject.toml`` and tested locally. Only pure
Python may enter: a compiled file (``.so``/``.pyd``) built for this machine would not load on
Lambda's Amazon Linux, so staging fails loudly instead. ``boto3``/``botocore`` are provided by
the Lambda Python runtime and ``aws_cdk`` must never reach it; both are refused.

The location of the staging directory is irrelevant to the deployment: CDK fingerprints the
asset by content and copies it into the cloud assembly.
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import importlib.util
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

__all__ = [
    "COMPILED_SUFFIXES",
    "FORBIDDEN_PACKAGES",
    "OPTIONAL_ACCELERATORS",
    "RUNTIME_DEPENDENCIES",
    "AssetError",
    "lambda_asset_directory",
    "lambda_code",
    "stage_lambda_asset",
]

RUNTIME_DEPENDENCIES: tuple[str, ...] = (
    "fastjsonschema",
    "jwt",
    "tenacity",
    "h11",
    "rsa",
    "pyasn1",
    "aws_lambda_powertools",
    "typing_extensions",
    "aws_xray_sdk",
    "wrapt",
)
"""Top-level import names the handlers need besides the standard library and what the Lambda runtime
provides (boto3, botocore, jmespath: Powertools' other dependency). ``aws_xray_sdk`` and ``wrapt`` are
Powertools' Tracer."""

OPTIONAL_ACCELERATORS: frozenset[str] = frozenset({"wrapt"})
"""Dependencies whose compiled extension is optional: staged without it (wrapt imports its pure-Python
implementation when ``wrapt._wrappers`` is missing), since a machine's build would not load on Lambda."""

FORBIDDEN_PACKAGES: frozenset[str] = frozenset(
    {"aws_cdk", "constructs", "jsii", "cdk_nag", "boto3", "botocore", "s3transfer", "tests"}
)
"""Top-level names that must never be in the asset (infrastructure code, or what Lambda provides)."""

COMPILED_SUFFIXES: tuple[str, ...] = (".so", ".pyd", ".dylib", ".dll")

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
"""``serverless_app/`` in the source tree."""

_SOURCE_SUFFIXES = (".py", ".json")
_SKIPPED_DIRECTORIES = frozenset({"__pycache__", "tests", "test"})


class AssetError(RuntimeError):
    """The Lambda asset cannot be staged as it would not run (or not be safe) on Lambda."""


def stage_lambda_asset(destination: Path) -> Path:
    """Fill ``destination`` (created if missing, must be empty) with the Lambda asset; return it."""
    destination.mkdir(parents=True, exist_ok=True)
    if any(destination.iterdir()):
        raise AssetError(f"asset staging directory {destination} is not empty")
    _copy_application(destination / PACKAGE_ROOT.name)
    for name in RUNTIME_DEPENDENCIES:
        _copy_dependency(name, destination)
    verify_asset(destination)
    return destination


def verify_asset(directory: Path) -> None:
    """Raise ``AssetError`` if ``directory`` holds compiled code or a forbidden top-level package."""
    compiled = sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and path.name.endswith(COMPILED_SUFFIXES)
    )
    if compiled:
        raise AssetError(f"compiled files would enter the Lambda asset: {', '.join(compiled)}")
    forbidden = sorted(path.name for path in directory.iterdir() if path.name in FORBIDDEN_PACKAGES)
    if forbidden:
        raise AssetError(f"forbidden packages would enter the Lambda asset: {', '.join(forbidden)}")


@functools.cache
def lambda_asset_directory() -> Path:
    """The asset staged once per process in a temporary directory removed at exit."""
    directory = Path(tempfile.mkdtemp(prefix="wschat-lambda-asset-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return stage_lambda_asset(directory)


def lambda_code() -> lambda_.Code:
    """One ``Code`` for every function: the same content-addressed asset."""
    return lambda_.Code.from_asset(str(lambda_asset_directory()))


def _copy_application(target: Path) -> None:
    target.mkdir()
    shutil.copy2(PACKAGE_ROOT / "__init__.py", target / "__init__.py")
    shutil.copy2(PACKAGE_ROOT / "definitions.py", target / "definitions.py")
    for source in _application_files(PACKAGE_ROOT / "chat"):
        destination = target / source.relative_to(PACKAGE_ROOT)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def _application_files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _SKIPPED_DIRECTORIES for part in relative.parts):
            continue
        if path.is_file() and path.suffix in _SOURCE_SUFFIXES and not path.name.startswith("test_"):
            yield path


def _copy_dependency(import_name: str, destination: Path) -> None:
    spec = importlib.util.find_spec(import_name)
    if spec is None:
        raise AssetError(f"runtime dependency {import_name!r} is not installed in this interpreter")
    patterns = ["__pycache__", "*.pyc"]
    if import_name in OPTIONAL_ACCELERATORS:
        patterns += [f"*{suffix}" for suffix in COMPILED_SUFFIXES]
    ignore = shutil.ignore_patterns(*patterns)
    if spec.submodule_search_locations:
        (package_dir,) = list(spec.submodule_search_locations)
        shutil.copytree(package_dir, destination / import_name, ignore=ignore)
    elif spec.origin:
        shutil.copy2(spec.origin, destination / Path(spec.origin).name)
    else:  # pragma: no cover - namespace packages without a location
        raise AssetError(f"cannot locate runtime dependency {import_name!r}")
    for dist_info in _dist_info_directories(import_name):
        shutil.copytree(dist_info, destination / dist_info.name, ignore=ignore)


def _dist_info_directories(import_name: str) -> list[Path]:
    distributions = importlib.metadata.packages_distributions().get(import_name, [])
    if not distributions:
        raise AssetError(f"no installed distribution provides {import_name!r}")
    found: list[Path] = []
    for distribution_name in sorted(set(distributions)):
        distribution = importlib.metadata.distribution(distribution_name)
        names = {file.parts[0] for file in distribution.files or () if file.parts[0].endswith(".dist-info")}
        if len(names) != 1:
            raise AssetError(f"cannot find the .dist-info of {distribution_name!r}")
        found.append(Path(str(distribution.locate_file(names.pop()))))
    return found
