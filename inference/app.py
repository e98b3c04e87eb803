"""The HTTP side: a plain ASGI app (uvicorn runs it) with SageMaker's routes.

``/ping``, ``/invocations``, ``/execution-parameters``, and the SageMaker Runtime path
``/endpoints/{name}/invocations`` that boto3 uses with ``endpoint_url``. Every fault becomes a
JSON body, a 4xx status and the ``x-amzn-ErrorType`` header in one place (``_error``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from inference.capture import CaptureWriter
from inference.config import ServerSettings, from_env
from inference.errors import InferenceError, ModelError, NotAcceptable, NotFound, PayloadTooLarge
from inference.handler import (
    ACCEPTS,
    CONTENT_TYPES,
    JSON,
    ModelHandler,
    media_type,
    model_fn,
    wants_probabilities,
)
from inference.runner import InferenceThread

if TYPE_CHECKING:
    from inference.metrics import RequestMetrics

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, body, headers

access_log = logging.getLogger("inference.access")
log = logging.getLogger(__name__)


class MethodNotAllowed(InferenceError):
    status = 405


class ClientGone(Exception):
    """The client closed the connection (or was closed for sending too slowly) mid-request."""


def choose_accept(header: str | None, default: str) -> tuple[str, dict[str, str]]:
    """The first supported type in Accept; ``*/*`` or nothing means the default."""
    if not header:
        return default, {}
    for option in header.split(","):
        kind, params = media_type(option)
        if kind in ("*/*", "application/*", ""):
            return default, params
        if kind in ACCEPTS:
            return kind, params
    raise NotAcceptable(f"Accept {header!r} is not supported; use one of {', '.join(ACCEPTS)}")


class InferenceApp:
    def __init__(
        self,
        handler: ModelHandler,
        settings: ServerSettings,
        capture: CaptureWriter | None = None,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.handler, self.settings, self.capture, self.metrics = (
            handler,
            settings,
            capture,
            metrics,
        )
        # Parse, predict and encode off the event loop, which keeps accepting and answering /ping.
        self.inference = InferenceThread(settings.timeout)
        self._variant = settings.variant_name.encode()
        self._execution_parameters = json.dumps(
            {
                "MaxConcurrentTransforms": settings.workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": int(settings.max_payload_mb),
            }
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rows, size_in = 0, 0
        answer: Answer | None
        try:
            if path == "/ping":
                _method(method, "GET")
                answer = (200, b"", [])
            elif path == "/invocations" or (
                path.startswith("/endpoints/") and path.endswith("/invocations")
            ):
                _method(method, "POST")
                body = await self._read_body(headers, receive)
                size_in = len(body)
                payload, content_type, extra, rows = await self.inference.run(
                    self._invoke, body, headers
                )
                answer = (200, payload, [(b"content-type", content_type.encode()), *extra])
            elif path == "/execution-parameters":
                _method(method, "GET")
                answer = (200, self._execution_parameters, [(b"content-type", b"application/json")])
            else:
                raise NotFound(
                    f"no route {path}; use /ping, /invocations or /endpoints/NAME/invocations"
                )
        except ClientGone:
            answer = None  # nobody is there to answer
        except InferenceError as exc:
            answer = _error(exc)
        except Exception as exc:  # a bug, not bad input: log it, answer as SageMaker wraps a crash
            log.exception("unexpected failure on %s %s", method, path)
            failure = ModelError(f"the model server failed: {type(exc).__name__}: {exc}")
            answer = _error(failure, original_status=500)
        status = answer[0] if answer else 499  # nginx's code for a client gone, in the log only
        seconds = time.perf_counter() - started
        if self.metrics:  # before the answer goes out: a client that has it finds it counted
            self.metrics.observe_request(
                path, status, media_type(headers.get("content-type"))[0], seconds, rows
            )
        access_log.info(
            json.dumps(
                {
                    "method": method,
                    "path": path,
                    "status": status,
                    "bytes_in": size_in,
                    "rows": rows,
                    "content_type": headers.get("content-type", ""),
                    "accept": headers.get("accept", ""),
                    "ms": round(seconds * 1000, 3),
                    "inference_id": headers.get("x-amzn-sagemaker-inference-id", ""),
                }
            )
        )
        if answer:
            await _respond(send, *answer)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.settings.max_payload_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(
                f"payload of {declared} bytes exceeds {limit} (SAGEMAKER_MAX_PAYLOAD_IN_MB)"
            )
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"payload exceeds {limit} bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB)"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _invoke(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[bytes, str, list[tuple[bytes, bytes]], int]:
        accept, accept_params = choose_accept(headers.get("accept"), self.settings.default_accept)
        attributes = headers.get("x-amzn-sagemaker-custom-attributes")
        data = self.handler.input_fn(body, headers.get("content-type"))
        prediction = self.handler.predict_fn(data, wants_probabilities(accept_params, attributes))
        payload = self.handler.output_fn(prediction, accept)
        if self.metrics:
            self.metrics.observe_predictions(prediction.labels)
        extra = [(b"x-amzn-invoked-production-variant", self._variant)]
        if attributes:
            extra.append((b"x-amzn-sagemaker-custom-attributes", attributes.encode("latin-1")))
        if self.capture:
            request_type = media_type(headers.get("content-type"))[0] or JSON
            self.capture.record(
                body, request_type, payload, accept, headers.get("x-amzn-sagemaker-inference-id")
            )
        return payload, accept, extra, len(prediction.labels)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.inference.close()  # after the in-flight requests: uvicorn waited for them
                if self.capture:
                    self.capture.close()
                if self.metrics:
                    self.metrics.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _method(actual: str, expected: str) -> None:
    if actual != expected:
        raise MethodNotAllowed(f"{actual} is not allowed here; use {expected}")


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _error(exc: InferenceError, original_status: int | None = None) -> Answer:
    body: dict[str, Any] = {"message": str(exc), "__type": exc.error_type}
    if exc.error_type == "ModelError":
        body.update(OriginalStatusCode=original_status or exc.status, OriginalMessage=str(exc))
    return (
        exc.status,
        json.dumps(body).encode(),
        [(b"content-type", b"application/json"), (b"x-amzn-errortype", exc.error_type.encode())],
    )


def create_app(settings: ServerSettings | None = None) -> InferenceApp:
    """The factory each server worker calls: the model loads here, once per worker."""
    # Worker processes start fresh: give them the same one-line log format as the parent.
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = settings or from_env()
    handler = model_fn(settings.model_dir)
    capture = None
    if settings.capture_dir and settings.capture_percent > 0:
        capture = CaptureWriter(
            settings.capture_dir,
            settings.endpoint_name,
            settings.variant_name,
            settings.capture_percent,
            int(settings.capture_max_mb * 1024 * 1024),
        )
    metrics = None
    if settings.metrics_port:
        from inference.metrics import RequestMetrics  # only when asked: serving stays light

        metrics = RequestMetrics(CONTENT_TYPES, classifier=hasattr(handler.model, "classes_"))
    log.info("model %s loaded from %s", handler.version, settings.model_dir)
    return InferenceApp(handler, settings, capture, metrics)
