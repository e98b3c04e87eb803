"""Client and model faults, each with the HTTP status and the error type boto3 understands.

SageMaker Runtime clients read the error code from ``x-amzn-ErrorType``: ``ValidationError``
(400) and ``ModelError`` (424) raise at once; a 5xx would be retried, so bad input never gets one.
"""

from __future__ import annotations


class InferenceError(Exception):
    status = 400
    error_type = "ValidationError"


class BadRequest(InferenceError):
    """Wrong shape, unparseable values, empty body, NaN or infinity where not allowed."""


class PayloadTooLarge(InferenceError):
    status = 413


class UnsupportedContentType(InferenceError):
    status = 415


class NotAcceptable(InferenceError):
    status = 406


class NotFound(InferenceError):
    status = 404


class ModelError(InferenceError):
    """The model itself failed on input that passed validation."""

    status = 424
    error_type = "ModelError"
