"""HubSpot's official Python SDK, unchanged, against the sandbox over real HTTP."""

from __future__ import annotations

import json
import re

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputUpsert,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

from leadsync.sandbox import RunningSandbox


@pytest.fixture
def hubspot(sandbox: RunningSandbox) -> HubSpot:
    return HubSpot(access_token=sandbox.token, host=sandbox.url)


def test_create_conflict_update_search_and_batch_upsert(hubspot: HubSpot) -> None:
    contacts = hubspot.crm.contacts
    created = contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={"email": "sdk@example.com", "firstname": "Sdk"}, associations=[]
        )
    )
    assert created.id.isdigit()
    assert created.properties["email"] == "sdk@example.com"

    with pytest.raises(ApiException) as caught:
        contacts.basic_api.create(
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                properties={"email": "SDK@example.com"}, associations=[]
            )
        )
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["category"] == "CONFLICT"
    match = re.search(r"Existing ID:\s*(\d+)", caught.value.body)
    assert match is not None
    assert match.group(1) == created.id

    by_id = contacts.basic_api.update(
        contact_id=created.id,
        simple_public_object_input=SimplePublicObjectInput(properties={"lastname": "ById"}),
    )
    assert by_id.properties["lastname"] == "ById"
    by_email = contacts.basic_api.update(
        contact_id="sdk@example.com",
        id_property="email",
        simple_public_object_input=SimplePublicObjectInput(properties={"phone": "555"}),
    )
    assert by_email.id == created.id
    fetched = contacts.basic_api.get_by_id(
        contact_id="sdk@example.com", id_property="email", properties=["phone", "lastname"]
    )
    assert (fetched.properties["phone"], fetched.properties["lastname"]) == ("555", "ById")

    found = contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[Filter(property_name="email", operator="EQ", value="Sdk@Example.com")]
                )
            ],
            properties=["email"],
            sorts=[],
            limit=10,
            after="0",
        )
    )
    assert found.total == 1
    assert found.results[0].id == created.id

    upserted = contacts.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="sdk@example.com", id_property="email", properties={"company": "Acme"}
                ),
                SimplePublicObjectBatchInputUpsert(
                    id="new@example.com", id_property="email", properties={"firstname": "New"}
                ),
            ]
        )
    )
    assert upserted.status == "COMPLETE"
    flags = {r.properties["email"]: r.new for r in upserted.results}
    assert flags == {"sdk@example.com": False, "new@example.com": True}

    page = contacts.basic_api.get_page(limit=10)
    assert len(page.results) == 2


def test_sdk_sees_401_and_429_as_api_exceptions(sandbox: RunningSandbox, hubspot: HubSpot) -> None:
    with pytest.raises(ApiException) as unauthorized:
        HubSpot(access_token="wrong", host=sandbox.url).crm.contacts.basic_api.get_page()
    assert unauthorized.value.status == 401
    # Without Retry-After: urllib3 inside the SDK would sleep it out and retry a GET 3 times.
    sandbox.state.update_config({"rate_limit": "1/10s", "retry_after": False})
    hubspot.crm.contacts.basic_api.get_page()
    with pytest.raises(ApiException) as limited:
        hubspot.crm.contacts.basic_api.get_page()
    assert limited.value.status == 429
    assert json.loads(limited.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
