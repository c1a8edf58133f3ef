"""/openapi.json is a valid OpenAPI 3.1 document, lists every route, and real responses of every
endpoint (successes and errors) validate against it."""
import json

import jsonschema
import pytest
from openapi_spec_validator import validate
from referencing import Registry, Resource

from tests.service.conftest import bearer

POST = {"id": "p1", "title": "Watershed", "body": "Thanks, lowering the sigma fixed it.", "category": "3D Segmentation",
        "author": {"id": 3, "name": "ann", "trust_level": 1, "account_age_days": 3}}
SPAM = {"id": 7, "title": "", "body": "To get more space news, you can visit StarDaily official website."}


@pytest.fixture()
def spec(client):
    return client.get("/openapi.json").get_json()


def test_document_is_valid_openapi(spec):
    validate(spec)


def test_every_route_is_described_and_nothing_else(app, spec):
    routes = {(rule.rule, method.lower()) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"} if rule.endpoint != "static"}
    described = {(path.replace("{job_id}", "<job_id>"), method) for path, ops in spec["paths"].items() for method in ops}
    assert routes == described


def schema_validator(spec, schema):
    """A JSON Schema 2020-12 validator whose #/components references point into the document."""
    registry = Registry().with_resource("urn:spec", Resource.opaque(spec))
    rebased = json.loads(json.dumps(schema).replace('"#/components', '"urn:spec#/components'))
    return jsonschema.Draft202012Validator(rebased, registry=registry)


def test_the_checker_rejects_a_wrong_contract(spec):
    scored = {"$ref": "#/components/schemas/Scored"}
    with pytest.raises(jsonschema.ValidationError):
        schema_validator(spec, scored).validate({"id": 1, "label": "ham"})
    with pytest.raises(jsonschema.ValidationError):
        schema_validator(spec, {"$ref": "#/components/schemas/BatchResponse"}).validate(
            {"results": [{"id": 1}], "model_version": "v"})


def check(spec, response, path, method):
    """Validate one real response against the document's schema for its path, method and status."""
    operation = spec["paths"][path][method]
    described = operation["responses"].get(str(response.status_code))
    assert described is not None, f"{method.upper()} {path} answered {response.status_code}, not in the document"
    if "$ref" in described:
        described = spec["components"]["responses"][described["$ref"].rsplit("/", 1)[1]]
    media = response.mimetype
    assert media in described["content"], (path, response.status_code, media)
    schema = described["content"][media]["schema"]
    instance = response.get_json() if media == "application/json" else response.get_data(as_text=True)
    schema_validator(spec, schema).validate(instance)
    for name, header in described.get("headers", {}).items():
        if name in response.headers:
            jsonschema.validate(response.headers[name], header["schema"])
    return instance


def test_real_responses_match_the_document(app, client, spec, make_key):
    key = bearer(make_key("classify", "feedback"))
    calls = [
        ("/v1/classify", "post", dict(json=POST)),
        ("/v1/classify", "post", dict(json=SPAM)),
        ("/v1/classify", "post", dict(json={"id": 1})),
        ("/v1/classify", "post", dict(data="{", content_type="application/json")),
        ("/v1/classify", "post", dict(data="x", content_type="text/plain")),
        ("/v1/classify", "post", dict(json=POST, headers={"Authorization": "Bearer wrong"})),
        ("/v1/classify/batch", "post", dict(json={"posts": [POST, SPAM]})),
        ("/v1/classify/batch", "post", dict(json={"posts": []})),
        ("/v1/feedback", "post", dict(json=dict(POST, label="spam"), headers=key)),
        ("/v1/feedback", "post", dict(json=dict(POST, label="spam"), headers=key)),
        ("/v1/feedback", "post", dict(json=dict(POST, label="nope"), headers=key)),
        ("/v1/feedback", "post", dict(json=dict(POST, label="spam"))),
        ("/v1/model", "get", {}),
        ("/healthz", "get", {}),
        ("/readyz", "get", {}),
        ("/metrics", "get", {}),
        ("/openapi.json", "get", {}),
        ("/1.1/verify-key", "post", dict(data={"key": key["Authorization"][7:], "blog": "https://f.example"})),
        ("/1.1/verify-key", "post", dict(data={"key": "wrong", "blog": "https://f.example"})),
        ("/1.1/comment-check", "post", dict(data={"api_key": key["Authorization"][7:], "comment_content": SPAM["body"]})),
        ("/1.1/comment-check", "post", dict(data={"api_key": "wrong", "comment_content": "hi"})),
        ("/1.1/comment-check", "post", dict(json={})),
        ("/1.1/submit-spam", "post", dict(data={"api_key": key["Authorization"][7:], "comment_content": SPAM["body"]})),
        ("/1.1/submit-ham", "post", dict(data={"api_key": key["Authorization"][7:], "comment_content": POST["body"]})),
        ("/1.1/submit-ham", "post", dict(data={"api_key": key["Authorization"][7:], "comment_content": ""})),
    ]
    statuses = set()
    for path, method, kwargs in calls:
        response = getattr(client, method)(path, **kwargs)
        check(spec, response, path, method)
        statuses.add((path, response.status_code))
    assert {("/v1/classify", 200), ("/v1/classify", 400), ("/v1/classify", 401), ("/v1/classify", 415),
            ("/v1/feedback", 201), ("/v1/feedback", 200), ("/1.1/submit-ham", 400)} <= statuses
