-- wrk script: POST one `entrada` of 1 unit per request (stock grows, never refused).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
wrk.body = '{"type": "entrada", "quantity": 1, "reason": "bench"}'
