"""The HTTP contract, driven in-process: routes, headers, status codes, and a fuzz test."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.app import InferenceApp
from inference.config import ServerSettings
from inference.handler import ModelHandler

from .conftest import ROW, call

CSV = {"content-type": "text/csv"}


def test_ping_and_execution_parameters(app: InferenceApp) -> None:
    ping = call(app, "GET", "/ping")
    assert (ping.status, ping.body) == (200, b"")
    params = call(app, "GET", "/execution-parameters")
    assert json.loads(params.body) == {
        "MaxConcurrentTransforms": 1,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 1,
    }


@pytest.mark.parametrize(
    "path", ["/invocations", "/endpoints/demo/invocations", "/endpoints/my%20model/invocations"]
)
def test_invocations_on_both_paths(app: InferenceApp, path: str) -> None:
    response = call(
        app, "POST", path, ROW.encode(), {**CSV, "X-Amzn-SageMaker-Custom-Attributes": "trace=7"}
    )
    assert response.status == 200
    assert json.loads(response.body) == {"predictions": ["Adelie"]}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert response.headers["x-amzn-sagemaker-custom-attributes"] == "trace=7"


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("image/png, text/csv;q=0.5", "text/csv"),
        ("application/jsonlines", "application/jsonlines"),
    ],
)
def test_accept_negotiation(app: InferenceApp, accept: str | None, content_type: str) -> None:
    headers = dict(CSV, **({"accept": accept} if accept else {}))
    response = call(app, "POST", "/invocations", ROW.encode(), headers)
    assert (response.status, response.headers["content-type"]) == (200, content_type)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/invocations", b"1,2", CSV, 400),
        ("POST", "/invocations", b"", CSV, 400),
        ("POST", "/invocations", ROW.encode(), {"content-type": "image/png"}, 415),
        ("POST", "/invocations", ROW.encode(), {**CSV, "accept": "image/png"}, 406),
        ("POST", "/invocations", b"x" * (1024 * 1024 + 1), CSV, 413),
        ("POST", "/invocations", b"x", {**CSV, "content-length": str(50 * 1024 * 1024)}, 413),
        ("GET", "/invocations", b"", {}, 405),
        ("POST", "/ping", b"", {}, 405),
        ("GET", "/nowhere", b"", {}, 404),
    ],
)
def test_client_faults_are_4xx_with_json_and_error_type(
    app: InferenceApp, method: str, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    response = call(app, method, path, body, headers)
    assert response.status == status
    assert response.headers["x-amzn-errortype"] == "ValidationError"
    assert json.loads(response.body)["message"]


RECORD = (
    '"bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181, '
    '"body_mass_g": 3750, "sex": "male", "year": 2007'
)


def _npy(array: Any) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nests arrays or objects too deeply"),
        (b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, "application/jsonlines", "line 1 nests"),
        (
            ('[{"island": "\\ud800", ' + RECORD + "}]").encode(),
            "application/json",
            "half of a UTF-16 surrogate pair",
        ),
        (
            _npy([["Torgersen\ud800", 39.1, 18.7, 181, 3750, "male", 2007]]),
            "application/x-npy",
            "half of a UTF-16 surrogate pair",
        ),
    ],
)
def test_hostile_text_is_a_400_naming_the_problem(
    app: InferenceApp, body: bytes, content_type: str, message: str
) -> None:
    response = call(app, "POST", "/invocations", body, {"content-type": content_type})
    assert (response.status, response.headers["x-amzn-errortype"]) == (400, "ValidationError")
    assert message in json.loads(response.body)["message"]


def test_json_lines_split_at_newlines_only(app: InferenceApp) -> None:
    """U+2028 and U+0085 are legal inside a JSON string; only "\\n" ends a line."""
    lines = [
        '{"island": "Tor\u2028gersen", ' + RECORD + "}",
        '{"island": "Bis\u0085coe", ' + RECORD + "}",
    ]
    body = "\r\n".join(lines).encode()
    response = call(app, "POST", "/invocations", body, {"content-type": "application/jsonlines"})
    assert response.status == 200, response.body
    assert len(json.loads(response.body)["predictions"]) == 2


class _Exploding:
    """A model that fails inside predict, as a broken artifact would."""

    classes_ = ("a", "b")

    def __init__(self, error: Exception) -> None:
        self.error = error

    def predict(self, data: Any) -> Any:
        raise self.error


@pytest.mark.parametrize("error", [ValueError("bad shape inside"), RuntimeError("segfault-ish")])
def test_model_failures_are_424_model_error(error: Exception) -> None:
    handler = ModelHandler(_Exploding(error), None, None)
    app = InferenceApp(handler, ServerSettings(workers=1))
    response = call(app, "POST", "/invocations", b"1,2", CSV)
    assert response.status == 424
    assert response.headers["x-amzn-errortype"] == "ModelError"
    body = json.loads(response.body)
    assert body["OriginalStatusCode"] in (424, 500) and str(error) in body["message"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        st.lists(
            st.lists(
                st.one_of(st.none(), st.floats(), st.text(max_size=8), st.integers()), max_size=9
            ),
            max_size=4,
        ).map(lambda rows: json.dumps(rows).encode()),
        st.just(ROW.encode()),
    ),
    content_type=st.sampled_from(
        [
            "text/csv",
            "application/json",
            "application/jsonlines",
            "application/x-npy",
            "text/plain",
            "",
            "text/csv; charset=latin-1",
            "application/json;;;",
            "\u00e9/x",
        ]
    ),
    accept=st.sampled_from(
        ["", "*/*", "text/csv", "application/xml", "application/json; probabilities=true", ",,"]
    ),
)
def test_fuzz_every_answer_is_2xx_or_4xx(
    app: InferenceApp, body: bytes, content_type: str, accept: str
) -> None:
    headers = {"content-type": content_type, "accept": accept}
    response = call(app, "POST", "/invocations", body, {k: v for k, v in headers.items() if v})
    assert 200 <= response.status < 500, response.body
    if response.status >= 400:
        assert json.loads(response.body)["message"]


class _Slow:
    """A prediction that runs away in Python code (a per-tree loop gone wrong)."""

    classes_ = ("a",)

    def predict(self, data: Any) -> Any:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pass


def test_a_runaway_prediction_is_stopped_at_the_timeout() -> None:
    app = InferenceApp(ModelHandler(_Slow(), None, None), ServerSettings(workers=1, timeout=1))
    response = call(app, "POST", "/invocations", b"1", CSV)
    assert response.status == 424
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" in json.loads(response.body)["message"]
    # The app still answers afterwards: the worker was not lost.
    assert call(app, "GET", "/ping").status == 200
