"""State shared by every Airflow process of a deployment, kept in Redis (``[jobstatus] redis_url``).

* `redis`: the one place that reads ``redis_url`` and hands out the process's sync client and each
  event loop's async client, and tells when Redis is unreachable (logged once) and back (logged once).
* `budget`: each account's request rate, per-day budget and Retry-After pause, enforced for all
  triggerers and workers together by one server-side Lua script; per process without Redis.
* `status`: job statuses and listings fetched by one poller, shared with every other poller of the
  account for that poll interval.
* `concurrency`: job slots for an account-wide concurrent-job limit (a description's `JobConcurrency`).

Without ``redis_url`` nothing here is used and each process works on its own, as before.
"""
