"""A small Flask application for test_flask.py: ``tern serve flask_app:app``."""

import hashlib

from flask import Flask, Response, jsonify, redirect, request, send_file, stream_with_context, url_for

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask"


@app.get("/greet/<name>")
def greet(name):
    return f"Hello, {name}!"


@app.get("/search")
def search():
    return jsonify(
        q=request.args.get("q"),
        page=request.args.get("page", type=int),
        tags=request.args.getlist("tag"),
        query_string=request.query_string.decode("latin-1"),
    )


@app.post("/form")
def form():
    return jsonify({key: request.form.getlist(key) for key in request.form})


@app.post("/json")
def echo_json():
    data = request.get_json()
    return jsonify(received=data, content_length=request.content_length), 201


@app.post("/upload")
def upload():
    stored = request.files["file"]
    digest = hashlib.sha256()
    size = 0
    while True:
        piece = stored.stream.read(1 << 20)
        if not piece:
            break
        digest.update(piece)
        size += len(piece)
    return jsonify(
        filename=stored.filename, size=size, sha256=digest.hexdigest(), note=request.form.get("note"), mimetype=stored.mimetype
    )


@app.get("/cookie/set")
def set_cookie():
    response = Response(f"cookie set to {request.args['value']}", mimetype="text/plain")
    response.set_cookie("flavour", request.args["value"], httponly=True)
    response.set_cookie("size", "large")
    return response


@app.get("/cookie/get")
def get_cookie():
    return jsonify(flavour=request.cookies.get("flavour"), size=request.cookies.get("size"))


@app.get("/old-place")
def old_place():
    return redirect(url_for("new_place", came_from="old"))


@app.get("/new-place")
def new_place():
    return f"landed, came from {request.args.get('came_from')}"


@app.get("/stream")
def stream():
    count = int(request.args.get("n", "5"))

    @stream_with_context
    def generate():
        # request is still usable while the body streams: that is what stream_with_context is for.
        for index in range(count):
            yield f"line {index} of {request.path}\n"

    return Response(generate(), mimetype="text/plain")


@app.get("/source")
def source():
    return send_file(__file__, mimetype="text/x-python")


@app.get("/where")
def where():
    return jsonify(script_root=request.script_root, path=request.path, url=request.url)


@app.get("/boom")
def boom():
    raise RuntimeError(f"flask boom {request.args.get('token')}")


def create_app():
    return app
