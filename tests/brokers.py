"""A Redis server and a Celery worker that a test starts, owns and stops itself."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent


def wait_until(condition, *, timeout, what, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """redis-server on a free port, in memory only, stopped with the test."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=10, what=f"redis-server on port {self.port}")

    def answers(self):
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.2)
        try:
            return client.ping()
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


class CeleryWorker:
    """`celery worker` on tests/reminders_worker.py's app, in its own process group."""

    def __init__(self, env, log_path):
        self.env = env
        self.log_path = log_path
        self.process = None

    def start(self):
        self.log_path.write_text("")
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.reminders_worker", "worker",
                 "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "--hostname", f"reminders-test-{uuid.uuid4().hex[:8]}@%h"],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                # Its own process group, so that killing it reaches its pool
                # processes and nothing else.
                start_new_session=True,
            )
        wait_until(lambda: " ready." in self.log() or self.process.poll() is not None,
                   timeout=30, what="the Celery worker to start")
        assert self.process.poll() is None, f"the worker exited:\n{self.log()}"

    def log(self):
        return self.log_path.read_text()

    def kill(self):
        """SIGKILL the worker and its pool: no clean-up, no acknowledgement."""
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    # At the end of a test nothing is left to finish, and a warm or even a cold
    # shutdown takes two seconds.
    stop = kill


@contextmanager
def publishing_to(broker_url):
    """Send this process's tasks to `broker_url` for real, instead of running them here."""
    from config.celery import app

    before = app.conf.broker_url, app.conf.task_always_eager
    app.conf.update(broker_url=broker_url, task_always_eager=False)
    app._after_fork()  # forgets the connection pools made for the previous broker
    try:
        yield app
    finally:
        app.pool.force_close_all()
        app.conf.update(broker_url=before[0], task_always_eager=before[1])
        app._after_fork()
