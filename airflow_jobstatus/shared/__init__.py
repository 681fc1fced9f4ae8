"""State shared by every triggerer and worker of a deployment, kept in Redis (``[jobstatus] redis_url``).

Without ``redis_url`` nothing here is used and each process works on its own, as before.
"""
