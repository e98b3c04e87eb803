"""`mlops ui`: pages over the CLI's functions, paginated lists, escaping, CSRF, and a real browser
(Debian's Chromium through its chromedriver) clicking through the session's demo run."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops.executor.records import ExecutionRecord, StepRecord
from mlops.home import Home
from mlops.registry.local import LocalModelRegistry
from tests.mlops.conftest import DemoRun, run_cli
from tests.mlops.ui_server import console, get, post

EXECUTIONS, VERSIONS = 200, 100
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, str]]:
    """A home with 200 executions and 100 versions of project `seeded`, written as the executor
    and the registry write them (no pipeline run), and its console."""
    home = Home(tmp_path_factory.mktemp("seeded"))
    for i in range(EXECUTIONS):
        execution_id = f"20260101-{i:06d}-abcdef"
        ExecutionRecord(
            execution_id=execution_id,
            pipeline_name="seeded",
            run_dir=str(home.runs / execution_id),
            parameters={"TargetColumn": 'say "hi"', "InputDataUri": f"s3://b/{SCRIPT}.csv"},
            status="Failed" if i % 7 == 0 else "Succeeded",
            start_time=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
            failure_reason=SCRIPT if i % 7 == 0 else None,
            steps=[StepRecord("Preprocess", "Processing", "Succeeded")],
        ).save()
    registry = LocalModelRegistry(home.registry)
    for i in range(VERSIONS):
        registry.create_model_package(
            "seeded",
            model_data_url=f"s3://b/{i}/model.tar.gz",
            image_uri="image",
            approval_status="PendingManualApproval",
            metrics={"metrics": {"accuracy": {"value": 0.9}}, "quality_gate": {"message": SCRIPT}},
            metadata={"DatasetUri": f"s3://b/{SCRIPT}.csv"},
            content_types=["text/csv"],
            response_types=["application/json"],
        )
    with console(home) as url:
        yield home, url


def _rows(page: str, table: str) -> int:
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return body.count("<tr>") - 1  # the header row


def test_lists_are_paginated_at_50(seeded: tuple[Home, str]) -> None:
    _, url = seeded
    status, first = get(f"{url}/projects/seeded/executions")
    assert status == 200 and _rows(first, "executions") == 50
    assert f"Page 1 of 4 ({EXECUTIONS} in all)" in first
    _, last = get(f"{url}/projects/seeded/executions?page=4")
    assert _rows(last, "executions") == 50 and 'id="next"' not in last
    _, versions = get(f"{url}/projects/seeded/versions?page=2")
    assert _rows(versions, "versions") == 50 and "Page 2 of 2" in versions


def test_values_from_data_and_users_are_escaped(seeded: tuple[Home, str]) -> None:
    _, url = seeded
    for path in (
        "/projects/seeded/executions",
        "/executions/20260101-000000-abcdef",
        "/projects/seeded/versions",
        "/projects/seeded/versions/1",
    ):
        status, page = get(url + path)
        assert status == 200, path
        assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
    _, execution = get(f"{url}/executions/20260101-000000-abcdef")
    assert "say &#34;hi&#34;" in execution or "say &quot;hi&quot;" in execution


def test_approve_needs_the_csrf_token_and_a_description(seeded: tuple[Home, str]) -> None:
    home, url = seeded
    decide = f"{url}/projects/seeded/versions/3/approve"
    assert post(decide, {"csrf": "forged", "description": "x"})[0] == 403
    _, page = get(f"{url}/projects/seeded/versions/3")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    status, answer = post(decide, {"csrf": token.group(1), "description": " "})
    assert status == 400 and "description is required" in answer
    assert post(f"{url}/projects/seeded/versions/3/delete", {"csrf": token.group(1)})[0] == 404
    assert LocalModelRegistry(home.registry).describe_model_package(
        "seeded", 3
    ).approval_status == ("PendingManualApproval")


def test_unknown_things_are_404_pages_without_a_trace(seeded: tuple[Home, str]) -> None:
    _, url = seeded
    for path in (
        "/executions/nope",
        "/projects/seeded/versions/999",
        "/nowhere",
        "/endpoints/nope/drift",
    ):
        status, page = get(url + path)
        assert status == 404 and "Traceback" not in page, path


# In a real browser ------------------------------------------------------------------------------
def _driver() -> Any:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        if os.environ.get("MLOPS_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium and chromedriver are required (make test installs both)")
        pytest.skip("no Chromium/chromedriver here (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver_path))


def _wait(browser: Any, condition: Any) -> Any:
    """A click that submits a form returns before the next page is there: wait for what the
    test reads (generously: a busy machine is slow, not wrong)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)  # mid-navigation
    return WebDriverWait(browser, 120, ignored_exceptions=ignored).until(condition)


def _present(element_id: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    return expected_conditions.presence_of_element_located((By.ID, element_id))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = _driver()
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def demo_console(demo_run: DemoRun) -> Iterator[tuple[DemoRun, str]]:
    """The console over the session's demo home, with an endpoint `console` serving version 1."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(demo_run.home.root))
        assert run_cli(["models", "approve", "1", "--description", "tests"])[0] == 0
        deploy = ["endpoint", "deploy", "--name", "console", "--version", "1", "--workers", "1"]
        code, _, err = run_cli([*deploy, "--capture-percent", "100"])
        assert code == 0, err
        try:
            with console(demo_run.home) as url:
                yield demo_run, url
        finally:
            run_cli(["endpoint", "delete", "console"])


def test_a_version_shows_its_lineage_and_an_endpoint_its_latest_drift_check(
    demo_console: tuple[DemoRun, str], tmp_path: Path
) -> None:
    """The pages show what `mlops lineage` and `mlops monitor drift` give, run as a user runs
    them: captured requests first, then the drift check the endpoint page links."""
    demo, url = demo_console
    project = demo.record.pipeline_name
    status, version = get(f"{url}/projects/{project}/versions/1")
    assert status == 200
    lineage = version.split('id="lineage">', 1)[1].split("</pre>", 1)[0]
    assert lineage.startswith("Data ") and f"Execution   {demo.execution_id}" in lineage
    assert "Step        Train (Training, Succeeded)" in lineage
    assert "Endpoint    console (InService)" in lineage
    _, before = get(f"{url}/endpoints/console")
    assert "No drift check yet" in before
    rows = tmp_path / "rows.csv"
    rows.write_text("Dream,49.5,18.4,195,3600,male,2008\nBiscoe,46.1,13.2,211,4500,female,2007\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(demo.home.root))
        for _ in range(3):
            assert run_cli(["endpoint", "invoke", "console", "--file", str(rows)])[0] == 0
        code, _, err = run_cli(["monitor", "drift", "--endpoint", "console"])
    assert code in (0, 1), err  # 1: violations found (six rows are not the training data)
    _, after = get(f"{url}/endpoints/console")
    shown = after.split('id="drift">', 1)[1].split("</p>", 1)[0]
    assert "Latest check" in shown and 'href="/endpoints/console/drift"' in shown
    assert ("violations in" in shown) == (code == 1)
    status, report = get(f"{url}/endpoints/console/drift")
    assert status == 200 and "<html" in report.lower() and "console" in report


@pytest.mark.slow
def test_an_execution_shows_its_step_graph_and_its_eda_report(
    browser: Any, demo_console: tuple[DemoRun, str]
) -> None:
    from selenium.webdriver.common.by import By

    demo, url = demo_console
    browser.get(f"{url}/projects/{demo.record.pipeline_name}/executions")
    browser.find_element(By.LINK_TEXT, demo.execution_id).click()
    _wait(browser, _present("graph"))
    steps = browser.find_elements(By.CSS_SELECTOR, "#graph g.step")
    shown = {s.get_attribute("data-step"): s.get_attribute("data-status") for s in steps}
    assert shown["Train"] == "Succeeded" and shown["RegisterModel"] == "Succeeded"
    assert shown["QualityGateFailed"] == "NotStarted"  # the branch not taken
    browser.find_element(By.ID, "eda").click()
    _wait(
        browser,
        lambda b: (
            b.current_url.endswith("/eda")
            and b.execute_script("return document.readyState === 'complete'")
        ),
    )
    loaded = browser.execute_script(
        "const i = [...document.images];"
        "return [i.length, i.filter(x => x.complete && x.naturalWidth > 0).length];"
    )
    assert loaded[0] >= 4 and loaded[0] == loaded[1]


@pytest.mark.slow
def test_the_try_the_model_form_predicts_what_the_cli_gets(
    browser: Any, demo_console: tuple[DemoRun, str], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    demo, url = demo_console
    row = {
        "island": "Dream",
        "bill_length_mm": "49.5",
        "bill_depth_mm": "18.4",
        "flipper_length_mm": "195",
        "body_mass_g": "3600",
        "sex": "male",
        "year": "2008",
    }
    browser.get(f"{url}/endpoints/console")
    for name, value in row.items():
        field = browser.find_element(By.CSS_SELECTOR, f'[data-feature="{name}"]')
        if field.tag_name == "select":
            Select(field).select_by_visible_text(value)
        else:
            field.clear()
            field.send_keys(value)
    browser.find_element(By.ID, "predict").click()
    shown = _wait(browser, _present("prediction")).text
    rows = tmp_path / "row.csv"
    rows.write_text(",".join(row.values()) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(demo.home.root))
        code, out, _ = run_cli(["endpoint", "invoke", "console", "--file", str(rows)])
    assert code == 0 and f'"{shown}"' in out
    # Bad input: the server's 400 message beside the field it names.
    field = browser.find_element(By.CSS_SELECTOR, '[data-feature="body_mass_g"]')
    field.clear()
    field.send_keys("heavy")
    browser.find_element(By.ID, "predict").click()
    error = _wait(browser, _present("field-error"))
    assert "body_mass_g" in error.text and "not a number" in error.text
    label = error.find_element(By.XPATH, "..")
    assert (
        label.find_element(By.CSS_SELECTOR, "[data-feature]").get_attribute("data-feature")
        == "body_mass_g"
    )
    browser.find_element(By.ID, "random").click()  # a row of the test split fills the form

    def filled(b: Any) -> bool:
        value = b.find_element(By.CSS_SELECTOR, '[data-feature="body_mass_g"]').get_attribute(
            "value"
        )
        return value != "heavy"  # replaced by the test row's value (or left empty if missing)

    _wait(browser, filled)


@pytest.mark.slow
def test_approving_in_the_console_is_what_models_list_shows(
    browser: Any, seeded: tuple[Home, str]
) -> None:
    from selenium.webdriver.common.by import By

    home, url = seeded
    browser.get(f"{url}/projects/seeded/versions/7")
    browser.find_element(By.ID, "approve-description").send_keys("alice: fine")
    browser.find_element(By.ID, "approve").click()
    _wait(browser, lambda b: b.find_element(By.ID, "approval").text == "Approved")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home.root))
        code, out, _ = run_cli(["models", "list", "--project", "seeded"])
    assert code == 0 and re.search(r"│ 7\s+│ Approved", out)


@pytest.mark.slow
def test_every_list_page_opens_in_the_browser(browser: Any, seeded: tuple[Home, str]) -> None:
    from selenium.webdriver.common.by import By

    _, url = seeded
    for path, pages in (("executions", 4), ("versions", 2)):
        browser.get(f"{url}/projects/seeded/{path}")
        for number in range(1, pages + 1):
            expected = f"Page {number} of {pages}"
            _wait(browser, lambda b, e=expected: e in b.find_element(By.ID, "pager").text)
            if number < pages:
                browser.find_element(By.ID, "next").click()
