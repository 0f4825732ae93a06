-- wrk script: POST a 10 MB body (the upload case).
wrk.method = "POST"
wrk.body = string.rep("x", 10 * 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
