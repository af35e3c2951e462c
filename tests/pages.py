"""The dashboard's pages as a logged-in browser asks for them (Django's test client), and what
a request costs in database queries."""

from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

# What htmx sends with the requests it makes (polls, partial swaps).
HTMX = {"HTTP_HX_REQUEST": "true"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def query_count(client, url: str, **extra) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code in {200, 286}
    return len(queries)


def cold_query_count(client, url: str, **extra) -> int:
    """Queries of a request that finds nothing in the cache (the most one can cost)."""
    cache.clear()
    return query_count(client, url, **extra)
