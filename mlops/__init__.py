"""The ``mlops`` command and the local stand-ins for SageMaker: object store, executor, registry."""
