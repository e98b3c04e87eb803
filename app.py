#!/usr/bin/env python3
"""CDK entry point (`npx cdk synth|deploy`): everything is built in ``infra.build_app``."""

import aws_cdk as cdk

from infra import build_app

app = build_app(context=cdk.App().node.get_all_context())
app.synth()
