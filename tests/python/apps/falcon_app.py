"""A small Falcon application for test_falcon.py: ``tern serve falcon_app:app``."""

import threading

import falcon


class QuoteResource:
    def __init__(self):
        self.lock = threading.Lock()
        self.quotes = [{"id": 1, "author": "Grace Hopper", "quote": "A ship in port is safe, but that's not what ships are built for."}]

    def on_get(self, req, resp):
        with self.lock:
            resp.media = {"quotes": list(self.quotes), "count": len(self.quotes)}

    def on_post(self, req, resp):
        data = req.get_media()
        if not isinstance(data, dict) or not isinstance(data.get("author"), str) or not isinstance(data.get("quote"), str):
            raise falcon.HTTPBadRequest(title="Invalid quote", description="author and quote must be strings")
        with self.lock:
            quote = {"id": len(self.quotes) + 1, "author": data["author"], "quote": data["quote"]}
            self.quotes.append(quote)
        resp.status = falcon.HTTP_201
        resp.location = f"/quote/{quote['id']}"
        resp.media = quote


class OneQuoteResource:
    def __init__(self, quotes):
        self.quotes = quotes

    def on_get(self, req, resp, quote_id):
        with self.quotes.lock:
            for quote in self.quotes.quotes:
                if quote["id"] == quote_id:
                    resp.media = quote
                    return
        raise falcon.HTTPNotFound(title="No such quote")


def create_app():
    application = falcon.App()
    quotes = QuoteResource()
    application.add_route("/quote", quotes)
    application.add_route("/quote/{quote_id:int}", OneQuoteResource(quotes))
    return application


app = create_app()
