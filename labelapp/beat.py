"""Every periodic task, in one place."""

BEAT_SCHEDULE = {
    "expire-leases": {"task": "annotations.expire_leases", "schedule": 60.0},
    "reap-training-jobs": {"task": "annotations.reap_training_jobs", "schedule": 60.0},
}
