"""The Celery app as tests/test_reminders_worker.py runs it: the real one, whose sweep
can be slowed down from outside so that a test can kill the worker in the middle.

With REMINDERS_TEST_PAUSE_SECONDS set, each sweep, once its flags are committed,
writes its process id to REMINDERS_TEST_PAUSE_FILE and sleeps before the e-mails.
"""

import os
import time
from pathlib import Path

from celery import signals

from config.celery import app

__all__ = ["app"]


@signals.worker_process_init.connect
def _pause_between_flags_and_emails(**kwargs):
    pause = os.environ.get("REMINDERS_TEST_PAUSE_SECONDS")
    if not pause:
        return
    from reminders import sweep

    notify_pending = sweep.notify_pending

    def paused(**options):
        Path(os.environ["REMINDERS_TEST_PAUSE_FILE"]).write_text(str(os.getpid()))
        time.sleep(float(pause))
        return notify_pending(**options)

    sweep.notify_pending = paused
