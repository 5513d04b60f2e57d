"""Settings for bench/bench_dashboard.py only: the product's, plus the baseline page's URL."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"
# Each request's log line would cost the server as much as some of the work measured.
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F405
