#!/usr/bin/env python3
"""CDK entry point (`npx cdk synth|deploy`): everything is built in ``infra.app.build_app``."""

import sys

import aws_cdk as cdk

from infra.app import build_app
from mlops.errors import MlopsError

try:
    app = build_app(context=cdk.App().node.get_all_context())
except MlopsError as error:  # a bad stage setting: say which and stop, no traceback
    sys.exit(f"error: {error}")
app.synth()
