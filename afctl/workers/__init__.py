"""Runs on Celery workers over Redis (`AFCTL_BROKER_URL`): jobs, the Celery app, the worker's
side (`worker`) and the side that enqueues and waits (`dispatch`). Without a broker, nothing
here is imported and everything runs in-process."""
