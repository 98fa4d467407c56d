"""``npx cdk synth WebSocketChatStack`` works offline, without AWS credentials, in both auth modes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.slow
def test_cdk_synth_succeeds_offline_in_both_auth_modes_and_an_environment(tmp_path: Path) -> None:
    """The CDK CLI synthesizes the stack (cdk-nag included) with and without -c auth=none, and as
    WebSocketChatStack-dev with -c env=dev, without credentials; each requires bootstrap version 6."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "CDK_")) or key == "CDK_DISABLE_CLI_TELEMETRY"
    }
    environment |= {
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    for mode, stack, extra in (
        ("token", "WebSocketChatStack", []),
        ("none", "WebSocketChatStack", ["-c", "auth=none"]),
        ("token", "WebSocketChatStack-dev", ["-c", "env=dev"]),
    ):
        out = tmp_path / f"cdk.out.{stack}.{mode}"
        result = subprocess.run(
            [str(CDK), "synth", stack, "--quiet", "--output", str(out), *extra],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=280,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        template = json.loads((out / f"{stack}.template.json").read_text())
        (assertion,) = template["Rules"]["CheckBootstrapVersion"]["Assertions"]
        assert "version 6 required" in assertion["AssertDescription"]
        types = [resource["Type"] for resource in template["Resources"].values()]
        assert types.count("AWS::ApiGatewayV2::Authorizer") == (1 if mode == "token" else 0)
        assert "WebSocketApiEndpoint" in template["Outputs"]
