-- wrk script: POST a 10 KB body (the WSGI echo case).
wrk.method = "POST"
wrk.body = string.rep("x", 10240)
wrk.headers["Content-Type"] = "application/octet-stream"
