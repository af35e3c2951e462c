"""The API's reference page at ``/api/v1/docs``: ninja's docs hook, rendered by us.

ninja's own pages (Swagger UI, Redoc) are JavaScript applications that load from a CDN unless
its static files are served; either way they need JavaScript and show nothing without it. This
page is made on the server from the same OpenAPI document (``/api/v1/openapi.json``), in the
dashboard's layout: it loads nothing from elsewhere, runs no script, and reads on a phone.
"""

import re
from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI
from ninja.openapi.docs import DocsBase

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Field:
    name: str
    where: str
    type: str
    required: bool
    description: str = ""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    description: str
    writes: bool
    fields: list[Field] = field(default_factory=list)
    answers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", f"{self.method} {self.path}".lower()).strip("-")


def _resolve(schema: dict, document: dict) -> dict:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        return document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def _type_of(schema: dict, document: dict) -> str:
    schema = _resolve(schema, document)
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_type_of(s, document) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type_of(schema.get('items', {}), document)}"
    return schema.get("title") if schema.get("type") == "object" else schema.get("type", "any")


def _fields(operation: dict, document: dict) -> list[Field]:
    found = [
        Field(p["name"], p["in"], _type_of(p.get("schema", {}), document),
              bool(p.get("required")), p.get("description", ""))
        for p in operation.get("parameters", [])
    ]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        # An optional body is "anyOf" its model and null.
        schema = next((_resolve(s, document) for s in body["schema"].get("anyOf", [])
                       if "$ref" in s), None) or _resolve(body["schema"], document)
        required = set(schema.get("required", []))
        found += [Field(name, "body", _type_of(prop, document), name in required,
                        prop.get("description", ""))
                  for name, prop in schema.get("properties", {}).items()]
    return found


def endpoints(document: dict) -> list[Endpoint]:
    """Each operation of an OpenAPI document, in the document's order."""
    found = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            found.append(Endpoint(
                method=method.upper(), path=path, summary=operation.get("summary", ""),
                description=operation.get("description", ""), writes=method != "get",
                fields=_fields(operation, document),
                answers=sorted((code, answer.get("description", ""))
                               for code, answer in operation.get("responses", {}).items()),
            ))
    return found


class EndpointList(DocsBase):
    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs) -> HttpResponse:
        document = api.get_openapi_schema(path_params=kwargs)
        return render(request, "api_docs.html", {
            "title": api.title,
            "version": api.version,
            "endpoints": endpoints(document),
            "openapi_url": self.get_openapi_url(api, kwargs),
        })
