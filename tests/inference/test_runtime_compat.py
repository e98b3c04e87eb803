"""boto3's sagemaker-runtime client, unchanged but for endpoint_url, against our server."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.app import InferenceApp
from inference.config import ServerSettings
from inference.handler import ModelHandler

from .conftest import ROW, serving


@pytest.fixture
def runtime(fake_aws_credentials: None, live_server: str) -> Iterator[object]:
    # Default retry settings: a 5xx would be retried, and RetryAttempts would show it.
    client = boto3.client("sagemaker-runtime", endpoint_url=live_server, region_name="us-east-1")
    yield client
    client.close()


def test_invoke_endpoint_returns_predictions(runtime) -> None:
    answer = runtime.invoke_endpoint(
        EndpointName="demo",
        ContentType="text/csv",
        Accept="application/json",
        Body=f"{ROW}\nBiscoe,50,15,220,5000,female,2008".encode(),
        CustomAttributes="probabilities=true",
    )
    document = json.loads(answer["Body"].read())
    assert document["predictions"] == ["Adelie", "Gentoo"]
    assert len(document["probabilities"]) == 2
    assert answer["ContentType"] == "application/json"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "probabilities=true"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ContentType": "text/csv", "Body": b"1,2"}, "the model expects 7"),
        ({"ContentType": "image/png", "Body": ROW.encode()}, "not supported"),
        ({"ContentType": "text/csv", "Accept": "image/png", "Body": ROW.encode()}, "Accept"),
        ({"ContentType": "text/csv", "Body": b"x" * (1024 * 1024 + 10)}, "exceeds"),
    ],
)
def test_bad_requests_raise_validation_error_not_retries(
    runtime, kwargs: dict, message: str
) -> None:
    with pytest.raises(runtime.exceptions.ValidationError) as caught:
        runtime.invoke_endpoint(EndpointName="demo", **kwargs)
    assert message in str(caught.value)
    assert caught.value.response["ResponseMetadata"].get("RetryAttempts", 0) == 0


class _Broken:
    """A model whose predict fails, as a corrupt artifact would."""

    classes_ = ("a", "b")

    def predict(self, data: object) -> object:
        raise ValueError("the trees are corrupt")


def test_model_failures_raise_model_error(fake_aws_credentials: None) -> None:
    app = InferenceApp(ModelHandler(_Broken(), None, None), ServerSettings(workers=1))
    with serving(app) as url:
        client = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1")
        with pytest.raises(client.exceptions.ModelError) as caught:
            client.invoke_endpoint(EndpointName="broken", ContentType="text/csv", Body=b"1,2")
        client.close()
    assert caught.value.response["OriginalStatusCode"] == 424
    assert "the trees are corrupt" in caught.value.response["OriginalMessage"]


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["text/csv", "application/json", "application/x-npy", "text/plain", ""]
    ),
    accept=st.sampled_from(["", "*/*", "text/csv", "application/xml"]),
)
def test_fuzz_over_the_wire_keeps_the_server_up(
    live_server: str, body: bytes, content_type: str, accept: str
) -> None:
    address = urlparse(live_server)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    headers = {k: v for k, v in {"Content-Type": content_type, "Accept": accept}.items() if v}
    connection.request("POST", "/endpoints/demo/invocations", body=body, headers=headers)
    answer = connection.getresponse()
    answer.read()
    connection.request("GET", "/ping")
    alive = connection.getresponse().status
    status = answer.status
    connection.close()
    assert 200 <= status < 500 and alive == 200


def test_mlops_endpoint_invoke_target_aws_against_our_server(
    fake_aws_credentials: None,
    live_server: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI's AWS path, pointed at our server by boto3's own endpoint override variable."""
    from mlops.cli import main

    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", live_server)
    rows = tmp_path / "rows.csv"
    rows.write_text(ROW + "\n")
    assert main(["endpoint", "invoke", "demo", "--file", str(rows), "--target", "aws"]) == 0
    assert json.loads(capsys.readouterr().out) == {"predictions": ["Adelie"]}
    rows.write_text("1,2\n")
    assert main(["endpoint", "invoke", "demo", "--file", str(rows), "--target", "aws"]) == 2
    assert (
        "InvokeEndpoint on endpoint demo failed: ValidationError: row 1 has 2 values"
        in capsys.readouterr().err
    )
