"""CDK infrastructure. ``infra.app.build_app`` is the one composition root; ``app.py`` only calls it.

Empty on purpose: importing a submodule must not load the CDK runtime unless it needs it."""
