import time, httpx
from tests.e2e.conftest import via_proxy

def test_explore(start_server, pg_database, pg_proxy):
    srv = start_server(via_proxy(pg_database, pg_proxy))
    print("startup", srv.startup_seconds)
    key = srv.create_key()
    c = srv.client(key, timeout=40)
    print(c.get("/health").json())
    print(c.get("/api/inventory").status_code, "conns", pg_proxy.open_connections)
    pg_proxy.stop()
    for path in ["/health", "/api/inventory", "/health/live"]:
        t=time.monotonic(); 
        try:
            r=c.get(path); print(path, r.status_code, r.text[:400], round(time.monotonic()-t,3))
        except Exception as e: print(path, "EXC", e, round(time.monotonic()-t,3))
    t=time.monotonic()
    r=c.post("/api/inventory", json={"sku":"A1","name":"x"}); print("POST", r.status_code, r.text[:300], round(time.monotonic()-t,3))
    pg_proxy.start()
    for i in range(10):
        t=time.monotonic(); r=c.get("/health"); print("after", r.status_code, round(time.monotonic()-t,3)); 
        if r.status_code==200: break
        time.sleep(0.5)
    r=c.get("/api/inventory"); print(r.status_code)
    print(srv.log_tail(15))
