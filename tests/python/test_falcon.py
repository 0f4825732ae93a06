"""Falcon under ``tern serve``: tests/python/apps/falcon_app.py, bare and inside wsgiref.validate.validator."""

import http.client
import json

import pytest
import requests

APPS = {"plain": "falcon_app:app", "validated": "validated_falcon:application"}
TIMEOUT = 30
FIRST_QUOTE = {"id": 1, "author": "Grace Hopper", "quote": "A ship in port is safe, but that's not what ships are built for."}


@pytest.fixture(params=list(APPS), ids=list(APPS))
def server(request, serve_app):
    return serve_app(APPS[request.param])


def url(server, path):
    host, port = server.address
    return f"http://{host}:{port}{path}"


def test_get_quotes_returns_json(server):
    answer = requests.get(url(server, "/quote"), timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert int(answer.headers["Content-Length"]) == len(answer.content)
    assert answer.json() == {"quotes": [FIRST_QUOTE], "count": 1}


def test_post_a_quote_then_read_it_back(server):
    new = {"author": "Ada Lovelace", "quote": "That brain of mine is something more than merely mortal."}
    answer = requests.post(url(server, "/quote"), json=new, timeout=TIMEOUT)
    assert answer.status_code == 201
    assert answer.headers["Location"].endswith("/quote/2")
    assert answer.json() == {"id": 2, **new}

    assert requests.get(url(server, "/quote/2"), timeout=TIMEOUT).json() == {"id": 2, **new}
    listing = requests.get(url(server, "/quote"), timeout=TIMEOUT).json()
    assert listing == {"quotes": [FIRST_QUOTE, {"id": 2, **new}], "count": 2}


def test_post_with_a_non_ascii_body_on_a_kept_alive_connection(server):
    connection = http.client.HTTPConnection(*server.address, timeout=TIMEOUT)
    try:
        for index, author in enumerate(["Zoë", "Łukasz", "山田"], start=2):
            body = json.dumps({"author": author, "quote": f"quote number {index} ✓"}, ensure_ascii=False).encode("utf-8")
            connection.request("POST", "/quote", body=body, headers={"Content-Type": "application/json; charset=utf-8"})
            answer = connection.getresponse()
            assert answer.status == 201
            assert json.loads(answer.read()) == {"id": index, "author": author, "quote": f"quote number {index} ✓"}
    finally:
        connection.close()


def test_bad_json_is_a_400(server):
    answer = requests.post(url(server, "/quote"), data=b"{not json", headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert answer.status_code == 400
    assert answer.json()["title"] == "Invalid JSON"

    answer = requests.post(url(server, "/quote"), json={"author": 5}, timeout=TIMEOUT)
    assert answer.status_code == 400
    assert answer.json() == {"title": "Invalid quote", "description": "author and quote must be strings"}

    assert requests.get(url(server, "/quote"), timeout=TIMEOUT).json()["count"] == 1


def test_unknown_quote_and_unknown_route_are_404(server):
    answer = requests.get(url(server, "/quote/99"), timeout=TIMEOUT)
    assert answer.status_code == 404
    assert answer.json() == {"title": "No such quote"}
    assert requests.get(url(server, "/nothing-here"), timeout=TIMEOUT).status_code == 404


def test_method_not_allowed(server):
    answer = requests.delete(url(server, "/quote"), timeout=TIMEOUT)
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
