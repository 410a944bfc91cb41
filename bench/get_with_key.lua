-- wrk script: authenticated GET.
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
