"""Every periodic task, in one place."""

BEAT_SCHEDULE = {
    "expire-leases": {"task": "annotations.expire_leases", "schedule": 60.0},
}
