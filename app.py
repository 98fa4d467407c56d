#!/usr/bin/env python3
"""CDK app: ``npx cdk synth WebSocketChatStack`` (add ``-c auth=none`` for an open ``$connect``).

``-c env=NAME`` deploys an environment: stack ``WebSocketChatStack-NAME``, every physical name
prefixed ``NAME-`` (``npx cdk deploy -c env=dev WebSocketChatStack-dev``); ``prod`` (or
``-c production=true``) retains the chat history. Without it the seed's names are used.

cdk-nag's AwsSolutions checks run on every synthesis (``-c nag=false`` skips them): their cost is
lost in the noise of a ~8-10 s synthesis, and a finding that is neither fixed nor suppressed with a reason fails the
synthesis, so nothing unreviewed reaches a deployment. The stack is environment-agnostic
(no ``env``): synthesis needs neither AWS credentials nor network.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from serverless_app.stacks.environment import DeploymentEnvironment
from serverless_app.stacks.websocket_chat_stack import WebSocketChatStack

app = cdk.App()

environment = DeploymentEnvironment.from_context(app)
WebSocketChatStack(app, environment.stack_id, environment=environment)

if app.node.try_get_context("nag") not in ("false", False):
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))

app.synth()
