-- One iris flower per request, nested as the tutorial API takes it.
wrk.method = "POST"
wrk.body = '{"sepal": {"length": 5.1, "width": 3.5}, "petal": {"length": 1.4, "width": 0.2}}'
wrk.headers["Content-Type"] = "application/json"
