"""The Lambda asset: runtime code and pure-Python dependencies only, importable on a bare Lambda runtime."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from serverless_app.definitions import FUNCTIONS, FunctionDefinition, function_environment
from serverless_app.stacks.asset import (
    COMPILED_SUFFIXES,
    OPTIONAL_ACCELERATORS,
    RUNTIME_DEPENDENCIES,
    AssetError,
    stage_lambda_asset,
    verify_asset,
)

LAMBDA_PROVIDED = ("boto3", "botocore", "jmespath", "s3transfer", "urllib3", "dateutil", "six")
"""What the Lambda Python 3.11 runtime has besides the standard library."""


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly staged asset."""
    return stage_lambda_asset(tmp_path_factory.mktemp("asset"))


@pytest.fixture(scope="module")
def lambda_provided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of symlinks to boto3 and its dependencies, standing in for the runtime's /var/runtime."""
    directory = tmp_path_factory.mktemp("runtime")
    for name in LAMBDA_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        source = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
        (directory / source.name).symlink_to(source)
    return directory


def _files(asset: Path) -> list[Path]:
    return [path.relative_to(asset) for path in asset.rglob("*") if path.is_file()]


def test_asset_holds_no_infrastructure_tests_or_lambda_provided_packages(asset: Path) -> None:
    """No aws_cdk, constructs, boto3/botocore, tests or stacks code is in the asset."""
    top_level = {path.name for path in asset.iterdir()}
    for forbidden in ("aws_cdk", "constructs", "jsii", "cdk_nag", "boto3", "botocore", "tests"):
        assert forbidden not in top_level
    assert not (asset / "serverless_app" / "stacks").exists()
    assert not (asset / "serverless_app" / "local").exists()
    for path in _files(asset):
        assert "tests" not in path.parts and not path.name.startswith("test_"), path


def test_asset_holds_no_compiled_or_cached_files(asset: Path) -> None:
    """No .so/.pyd, no __pycache__ and no .pyc enter the asset."""
    for path in _files(asset):
        assert not path.name.endswith(COMPILED_SUFFIXES), path
        assert "__pycache__" not in path.parts and path.suffix != ".pyc", path


def test_asset_holds_the_application(asset: Path) -> None:
    """The package root, definitions and every handler module are in the asset; chat holds only .py and .json."""
    assert (asset / "serverless_app" / "__init__.py").is_file()
    assert (asset / "serverless_app" / "definitions.py").is_file()
    for function in FUNCTIONS:
        module = function.handler.rsplit(".", 1)[0]
        assert (asset / (module.replace(".", "/") + ".py")).is_file(), module
    suffixes = {path.suffix for path in (asset / "serverless_app" / "chat").rglob("*") if path.is_file()}
    assert suffixes <= {".py", ".json"}


@pytest.mark.parametrize("name", RUNTIME_DEPENDENCIES)
def test_asset_holds_each_dependency_with_its_license(asset: Path, name: str) -> None:
    """Each runtime dependency is there (a package, or a single module) with the .dist-info of its
    distribution (METADATA and license)."""
    assert (asset / name / "__init__.py").is_file() or (asset / f"{name}.py").is_file()
    (distribution,) = importlib.metadata.packages_distributions()[name]
    metadata = importlib.metadata.metadata(distribution)
    dist_infos = [
        path
        for path in asset.glob("*.dist-info")
        if f"Name: {metadata['Name']}\nVersion: {metadata['Version']}\n" in (path / "METADATA").read_text()
    ]
    assert len(dist_infos) == 1, name
    assert any("licen" in str(path).lower() for path in dist_infos[0].rglob("*")), name


@pytest.mark.parametrize("name", sorted(OPTIONAL_ACCELERATORS))
def test_optional_accelerators_are_staged_pure_python_and_import(asset: Path, name: str) -> None:
    """wrapt (Powertools' Tracer, through aws_xray_sdk) is staged without its compiled extension, and
    imports from the asset alone in a bare interpreter: its pure-Python implementation."""
    assert (asset / name).is_dir()
    probe = f"import sys; sys.path[:0] = [{str(asset)!r}]; import {name}; print({name}.__file__)"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(asset))


def test_staging_refuses_compiled_files(tmp_path: Path) -> None:
    """A compiled extension in the staged tree makes staging fail loudly."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    with pytest.raises(AssetError, match="compiled"):
        verify_asset(tmp_path)


def test_staging_refuses_forbidden_packages(tmp_path: Path) -> None:
    """aws_cdk (or boto3) at the asset's top level makes staging fail loudly."""
    (tmp_path / "aws_cdk").mkdir()
    with pytest.raises(AssetError, match="forbidden"):
        verify_asset(tmp_path)


def test_staging_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    """Staging never mixes the asset with leftovers."""
    (tmp_path / "leftover.py").write_text("")
    with pytest.raises(AssetError, match="not empty"):
        stage_lambda_asset(tmp_path)


_PROBE = """
import importlib, json, os, sys
asset, provided, handler = sys.argv[1:4]
sys.path[:0] = [asset, provided]
module_name, _, attribute = handler.rpartition(".")
function = getattr(importlib.import_module(module_name), attribute)
outside = sorted(
    name for name, module in sys.modules.items()
    if getattr(module, "__file__", None)
    and not module.__file__.startswith((asset, provided, sys.base_prefix, sys.base_exec_prefix))
)
print(json.dumps({"callable": callable(function), "outside": outside}))
"""


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_handler_resolves_in_a_bare_lambda_interpreter(
    asset: Path, lambda_provided: Path, function: FunctionDefinition
) -> None:
    """Each handler string imports and resolves to a callable with only the asset and boto3 on sys.path."""
    environment = {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        **function_environment(function),
    }
    result = subprocess.run(
        # -I: no PYTHONPATH, no user site, no cwd; -S: no site-packages of this venv.
        [sys.executable, "-I", "-S", "-c", _PROBE, str(asset), str(lambda_provided), function.handler],
        capture_output=True,
        text=True,
        env=environment,
        cwd=str(asset.parent),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report == {"callable": True, "outside": []}
