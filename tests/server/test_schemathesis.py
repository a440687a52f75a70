"""schemathesis over the OpenAPI document of afctl serve, authenticated: no request it makes
gets a 5xx, and every answer has a status, content type and body the document allows.

A bounded run is part of `make test` (AFCTL_SCHEMATHESIS_EXAMPLES examples per operation,
5 by default); CI's nightly job runs it longer:
    AFCTL_SCHEMATHESIS_EXAMPLES=200 .venv/bin/pytest tests/server/test_schemathesis.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import afctl.server.routes  # noqa: F401  (declares the routes)
from afctl.server.api import API
from afctl.server.core import ServeSettings
from afctl.server.limits import Limits
from afctl.server.openapi import document
from tests.server.conftest import Running, make_key, served_repo

EXAMPLES = int(os.environ.get("AFCTL_SCHEMATHESIS_EXAMPLES", "5"))
schema = schemathesis.openapi.from_dict(document(API))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str]]:
    repo: Path = served_repo(tmp_path_factory.mktemp("schemathesis"))
    make_key(repo, "viewer", name="spare")  # two keys: no id prefix revokes just one
    key = make_key(repo, "admin", name="fuzzer")
    limits = Limits(rate_per_min=0, max_runs_per_key=1000, request_timeout_s=2)
    settings_ = ServeSettings(port=0, workspace=str(repo), limits=limits, grace_s=1)
    with Running(settings_) as running:
        yield running, key


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_document_says(case: Any, served: tuple[Running, str]) -> None:
    running, key = served
    response = case.call(base_url=running.url, headers={"authorization": f"Bearer {key}"},
                         timeout=30)  # fmt: skip
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                             response_schema_conformance])  # fmt: skip
