"""The Python thread pool under calls that compute rather than wait: once the interpreter is
saturated, only a few threads stay in calls and the rest of the jobs wait in the queue. Every
request must still be answered, in full, however the pool shrinks and grows under it."""

import http.client
import threading


CLIENTS = 48
REQUESTS_EACH = 12
TIMEOUT = 60


def run_client(address, index, answers, failures):
    connection = http.client.HTTPConnection(*address, timeout=TIMEOUT)
    try:
        for number in range(REQUESTS_EACH):
            path = f"/c{index}/r{number}"
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or not body.startswith(path.encode() + b" "):
                failures.append((path, response.status, body[:80]))
            else:
                answers.append(path)
    except Exception as error:  # a request never answered times out here
        failures.append((f"/c{index}", "error", repr(error)))
    finally:
        connection.close()


def test_every_request_is_answered_while_cpu_bound_calls_saturate_the_interpreter(serve_app):
    server = serve_app("cpu_app:application", "--no-access-log")
    answers, failures = [], []
    clients = [
        threading.Thread(target=run_client, args=(server.address, index, answers, failures))
        for index in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join(TIMEOUT * REQUESTS_EACH)
    assert not failures, failures[:5]
    assert len(answers) == CLIENTS * REQUESTS_EACH
    assert server.process.poll() is None
