"""``manage.py serve``: run the whole authorization server with one command.

On a fresh clone it needs nothing: it checks its prerequisites (the address free, the data directory
writable, the key store, database and Redis reachable: authserver.serve.preflight) and stops, having
changed nothing, if any is missing; then it migrates the database, creates the embedded broker's
folders, creates a first superuser, generates a self-signed certificate, then runs granian (HTTPS),
a Celery worker and Celery beat as child processes until Ctrl-C or SIGTERM. Once all three are up
it prints a short summary (URLs, the first run's password, the data directory) as the last thing
on the screen: the children start quietly (no Celery banners; their own INFO lines only with
``-v 2``). ``DATABASE_URL`` and ``REDIS_URL`` switch the children to PostgreSQL and Redis through
the settings they inherit.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from authserver import conf_files
from authserver.conf_parsers import ConfigurationErrors
from authserver.datadir import BASE_DIR
from authserver.db import unbounded_waits
from authserver.serve import net, preflight, tls
from authserver.serve.summary import summary_lines
from authserver.serve.supervisor import (
    SERVER_LOG_CONFIG,
    ChildExited,
    NotReady,
    StopRequested,
    Supervisor,
    reset_metrics_dir,
)
from authserver.staff import services as staff_services

DEFAULT_BIND = "127.0.0.1:8443"
ADMIN_USERNAME = "admin"
WEB_READY_TIMEOUT = 60.0
READY_TIMEOUT = 15.0  # after the web process answers, for /readyz to turn 200
WORKER_READY_TIMEOUT = 60.0
BEAT_READY_TIMEOUT = 60.0
# The web process hands its access lines (serve's own readiness probes among them) to the log about
# once a second (authserver.events): the summary waits for them, so that it is the last thing shown.
SETTLE_SECONDS = 1.5


# granian's own defaults let about 400 KiB of request line and headers (16 MiB over HTTP/2) through.
HEADER_LIMIT = 64 * 1024
SERVE_HSTS_SECONDS = 365 * 24 * 3600


class Command(BaseCommand):
    help = (
        "Run authserver: migrate, first-run setup (superuser, self-signed TLS certificate), then "
        "granian (HTTPS), a Celery worker and Celery beat until interrupted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=DEFAULT_BIND, help=f"HOST:PORT to listen on (default {DEFAULT_BIND})")
        parser.add_argument("--workers", type=int, default=2, help="web server worker processes (default 2)")
        parser.add_argument(
            "--no-tls",
            action="store_true",
            help="plain HTTP, for running behind a TLS-terminating proxy (sets AUTHSERVER_BEHIND_PROXY=1)",
        )
        parser.add_argument("--no-worker", action="store_true", help="do not start a Celery worker")
        parser.add_argument("--no-beat", action="store_true", help="do not start Celery beat")

    # --- output -------------------------------------------------------------------------------
    def say(self, message: str = "") -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def warn(self, message: str) -> None:
        self.stderr.write(f"serve: {message}")
        self.stderr.flush()

    # --- main ---------------------------------------------------------------------------------
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            bind = net.Bind.parse(options["bind"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        use_tls = not options["no_tls"]
        verbosity = options["verbosity"]

        data_dir = Path(settings.DATA_DIR)
        run_dir = data_dir / "run"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        lock = self._lock(run_dir / "serve.lock")  # held (open) until serve exits

        # Before any first-run setup: a serve that cannot run must not have created the admin (and
        # shown its one-time password), nor a certificate. Every problem at once, then exit 1.
        problems = preflight.problems(bind=bind, data_dir=data_dir, use_tls=use_tls)
        if problems:
            lock.close()
            count = len(problems)
            report = ConfigurationErrors(problems, heading=(
                f"serve cannot start: {count} problem{'s' if count != 1 else ''} (nothing was set up or changed):"),
                footer="")
            self.stderr.write(report.report())
            self.stderr.flush()
            raise SystemExit(1)

        with unbounded_waits():  # a long migration is no request: no lock or statement timeout
            call_command("migrate", interactive=False, verbosity=max(0, verbosity - 1))
        self.say("Database migrated.")
        self._check_key_store()
        embedded_broker = str(settings.CELERY_BROKER_URL).startswith("filesystem://")
        if embedded_broker:
            self._create_broker_folders()
        password = self._ensure_superuser()
        connections.close_all()

        issuer, child_env = self._issuer_and_environment(bind, use_tls)
        cert_path = key_path = None
        if use_tls:
            issuer_host = urlsplit(issuer).hostname or ""
            try:
                files = tls.ensure_certificate(
                    data_dir / "tls", extra_names=[bind.connect_host, issuer_host], check_names=[issuer_host]
                )
            except (OSError, ValueError) as exc:
                raise CommandError(f"TLS certificate: {exc}") from exc
            cert_path, key_path = files.cert, files.key
            if files.created:
                self.say(f"Generated a self-signed TLS certificate: {cert_path}")
            for warning in files.warnings:
                self.warn(warning)
            # This server terminates TLS itself, so it is the one to tell browsers to use nothing
            # else (RFC 6797): a year, unless AUTHSERVER_HSTS_SECONDS says otherwise (0 turns it off).
            # Subdomains and preload stay production-only (settings.py). Behind a proxy (--no-tls)
            # the proxy's rules and the settings' defaults apply, as before.
            if not conf_files.given(os.environ, "AUTHSERVER_HSTS_SECONDS"):
                child_env["AUTHSERVER_HSTS_SECONDS"] = str(SERVE_HSTS_SECONDS)
        else:
            child_env["AUTHSERVER_BEHIND_PROXY"] = "1"

        supervisor = Supervisor(log=self.warn)
        supervisor.install_signal_handlers()
        failure: str | None = None
        try:
            self._start_children(supervisor, bind, options, child_env, cert_path, key_path, embedded_broker)
            self._wait_ready(supervisor, bind, use_tls, run_dir, options)
            self._announce(supervisor, bind, use_tls, issuer, cert_path, password)
            supervisor.run()
        except StopRequested as exc:
            self.say(f"Received {exc}; stopping.")
        except (ChildExited, NotReady) as exc:
            failure = str(exc)
            self.warn(f"{failure}; stopping the other processes.")
        finally:
            supervisor.stop_all()
            lock.close()
        if failure:
            raise CommandError(failure, returncode=1)
        self.say("Stopped.")

    # --- setup steps --------------------------------------------------------------------------
    @staticmethod
    def _lock(path: Path) -> Any:
        fh = path.open("a")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.close()
            raise CommandError(
                f"another serve is already running with the data directory {path.parent.parent}"
            ) from exc
        return fh

    def _check_key_store(self) -> None:
        """After migrate: a fresh install gets its KEK; lost or damaged keys stop serve here."""
        from django.core.exceptions import ImproperlyConfigured

        from authserver.crypto import keystore_ready

        try:
            store = keystore_ready()
        except ImproperlyConfigured as exc:
            raise CommandError(f"key store: {exc}") from exc
        self.say(f"Key store: {store.describe()} (KEK version {store.current_version()}).")

    @staticmethod
    def _create_broker_folders() -> None:
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if options.get(key):
                Path(str(options[key])).mkdir(mode=0o700, parents=True, exist_ok=True)
        Path(settings.BROKER_DIR, "tmp").mkdir(mode=0o700, parents=True, exist_ok=True)

    def _ensure_superuser(self) -> str | None:
        """Create the first superuser if there is none; its generated one-time password, to show once."""
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return None
        if user_model.objects.filter(**{user_model.USERNAME_FIELD: ADMIN_USERNAME}).exists():
            raise CommandError(
                f'no superuser exists but the username "{ADMIN_USERNAME}" is taken; '
                "create one with `manage.py createsuperuser`"
            )
        password = os.environ.get("AUTHSERVER_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        else:
            try:
                validate_password(password, user=user_model(**{user_model.USERNAME_FIELD: ADMIN_USERNAME}))
            except ValidationError as exc:
                raise CommandError("AUTHSERVER_ADMIN_PASSWORD: " + " ".join(exc.messages)) from exc
        admin_user = user_model.objects.create_superuser(**{user_model.USERNAME_FIELD: ADMIN_USERNAME}, email="",
                                                         password=password)
        if generated:
            # A one-time password: the first login must replace it, then enrol a second factor. It is
            # shown once, in the summary (after the children have started, so it is not scrolled away).
            staff_services.staff_password_change_require(user=admin_user)
            self.say(f'Created superuser "{ADMIN_USERNAME}"; its one-time password follows in the summary.')
            return password
        self.say(f'Created superuser "{ADMIN_USERNAME}" with the password from AUTHSERVER_ADMIN_PASSWORD.')
        return None

    def _issuer_and_environment(self, bind: net.Bind, use_tls: bool) -> tuple[str, dict[str, str]]:
        """The issuer to announce and the environment every child runs with."""
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = os.environ.get("DJANGO_SETTINGS_MODULE", "authserver.settings")
        env["AUTHSERVER_DATA_DIR"] = str(settings.DATA_DIR)  # the resolved one, whatever the cwd
        env.pop("AUTHSERVER_ADMIN_PASSWORD", None)  # the children have no use for it

        local_url = bind.url("https" if use_tls else "http")
        if conf_files.given(os.environ, "AUTHSERVER_ISSUER"):  # directly or as AUTHSERVER_ISSUER_FILE
            issuer = str(settings.ISSUER)
        else:
            # Not configured: the issuer is where this server really listens, and the children
            # must agree (RFC 8414 metadata, RFC 9207 iss, CSRF trusted origins derive from it).
            issuer = local_url
            env["AUTHSERVER_ISSUER"] = issuer
            if not use_tls:
                self.warn(
                    "--no-tls without AUTHSERVER_ISSUER: the issuer is the plain-HTTP address; set "
                    "AUTHSERVER_ISSUER to the proxy's public https:// URL"
                )
        if not conf_files.given(os.environ, "AUTHSERVER_ALLOWED_HOSTS"):
            hosts = list(settings.ALLOWED_HOSTS)
            for host in (bind.connect_host, urlsplit(issuer).hostname or ""):
                host = net.url_host(host)
                if host and host not in hosts:
                    hosts.append(host)
            env["AUTHSERVER_ALLOWED_HOSTS"] = ",".join(hosts)
        return issuer, env

    def _start_children(
        self,
        supervisor: Supervisor,
        bind: net.Bind,
        options: dict[str, Any],
        env: dict[str, str],
        cert_path: Path | None,
        key_path: Path | None,
        embedded_broker: bool,
    ) -> None:
        python = sys.executable
        run_dir = Path(settings.DATA_DIR) / "run"
        # Quiet start-up, so that serve's summary is the last thing on the screen: no Celery banners,
        # and the servers' own INFO lines (granian's workers starting, Celery's "ready" and every task
        # received and succeeded) only with -v 2. The application's own log lines keep
        # AUTHSERVER_LOG_LEVEL.
        chatty = options["verbosity"] >= 2
        celery_level = "INFO" if chatty else "WARNING"
        env["PROMETHEUS_MULTIPROC_DIR"] = str(reset_metrics_dir(Path(str(settings.PROMETHEUS_MULTIPROC_DIR))))
        # granian, as in the production web role, here terminating TLS itself. Chosen on the bench's
        # comparison of the two candidates serving HTTPS (`python -m bench --compare
        # granian-tls,gunicorn-gthread-tls`; README, "Server choice"): ahead on introspection (hot
        # and cold) and client_credentials. Four blocking threads per worker for requests, as gunicorn
        # gthread had here: serve also answers browsers, and an explicit revocation holds its thread
        # while the fan-out settles; plus one per revocation stream the worker may hold (C7,
        # AUTHSERVER_REVOCATIONS_MAX_STREAMS), so streams never take the requests' threads.
        web = [
            python, "-m", "granian", "--interface", "wsgi",
            "--host", bind.host or "0.0.0.0",  # noqa: S104 - "--bind :PORT" asks for every interface
            "--port", str(bind.port),
            "--workers", str(options["workers"]),
            "--blocking-threads", str(4 + settings.REVOCATIONS_MAX_STREAMS),
            "--no-ws",
            # Shorter than serve's own 10 s grace period, so the web server's stop is always graceful.
            "--workers-kill-timeout", "8",
            # A granian worker process that dies is replaced by granian; only its main process
            # dying stops serve (authserver.serve.supervisor).
            "--respawn-failed-workers", "--respawn-interval", "1",
            # JSON lines like the application's; no access log (the application writes one).
            "--log-config", str(SERVER_LOG_CONFIG),
            "--log-level", "info" if chatty else "warning",
            "--no-access-log",
            # Request line and headers capped at 64 KiB, as the body is (DATA_UPLOAD_MAX_MEMORY_SIZE):
            # above it granian answers 414/431 itself (empty bodies; not ours to shape).
            "--http1-buffer-size", str(HEADER_LIMIT), "--http2-max-headers-size", str(HEADER_LIMIT),
        ]  # fmt: skip
        if cert_path and key_path:
            # TLS 1.2 too (granian's default minimum is 1.3): serve is also what browsers and older
            # command-line clients reach directly.
            web += ["--ssl-certificate", str(cert_path), "--ssl-keyfile", str(key_path), "--ssl-protocol-min", "tls1.2"]
        web.append("authserver.wsgi:application")
        supervisor.spawn("web", web, env, BASE_DIR)

        if not options["no_worker"]:
            ready_file = run_dir / "worker.ready"
            worker_env = {**env, "AUTHSERVER_SERVE_WORKER_READY_FILE": str(ready_file)}
            if embedded_broker:
                # The worker's temporary files stay inside the owner-only data directory (the
                # embedded broker itself claims and stages messages in its own folders beside the
                # queue: authserver.broker).
                worker_env["TMPDIR"] = str(Path(settings.BROKER_DIR) / "tmp")
            worker = [
                python, "-m", "celery", "-A", "authserver", "--quiet", "worker",
                "--loglevel", celery_level, "--concurrency", "1", "-Q", "celery",
                "--without-mingle", "--without-gossip",
                "-I", "authserver.serve.worker_ready",
            ]  # fmt: skip
            supervisor.spawn(
                "worker", worker, worker_env, BASE_DIR, restart=True,
                before_start=lambda: ready_file.unlink(missing_ok=True),
            )  # fmt: skip

        if not options["no_beat"]:
            pidfile = run_dir / "celerybeat.pid"
            beat_ready = run_dir / "beat.ready"
            beat = [
                python, "-m", "celery", "-A", "authserver", "--quiet", "beat",
                "--loglevel", celery_level,
                "--scheduler", "authserver.beat:LockedDatabaseScheduler",
                "--pidfile", str(pidfile),
                "--schedule", str(run_dir / "celerybeat-schedule"),
            ]  # fmt: skip
            # serve holds the data directory's lock, so a pidfile here is a leftover of a crash
            # (of an earlier serve, or of the beat being restarted).
            def before_beat() -> None:
                pidfile.unlink(missing_ok=True)
                beat_ready.unlink(missing_ok=True)

            beat_env = {**env, "AUTHSERVER_SERVE_BEAT_READY_FILE": str(beat_ready)}
            supervisor.spawn("beat", beat, beat_env, BASE_DIR, restart=True, before_start=before_beat)

    def _wait_ready(
        self, supervisor: Supervisor, bind: net.Bind, use_tls: bool, run_dir: Path, options: dict[str, Any]
    ) -> None:
        status: list[int | None] = [None]

        def web_answers() -> bool:
            return net.probe(bind.connect_host, bind.port, tls=use_tls, path="/livez") is not None

        supervisor.wait_until(web_answers, WEB_READY_TIMEOUT, "the web server (granian)")
        # Live; ready once its dependencies answer (the first readiness answer may still be
        # "starting" while the process loads its migration graph).
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            status[0] = net.probe(bind.connect_host, bind.port, tls=use_tls, path="/readyz")
            if status[0] == 200 or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if status[0] != 200:
            self.warn(f"/readyz answered {status[0]} (expected 200); see the log above")
        if not options["no_worker"]:
            supervisor.wait_until((run_dir / "worker.ready").exists, WORKER_READY_TIMEOUT, "Celery worker")
        if not options["no_beat"]:  # dispatching: it has taken the beat lock (authserver.beat)
            supervisor.wait_until((run_dir / "beat.ready").exists, BEAT_READY_TIMEOUT, "Celery beat")
        settled = time.monotonic() + SETTLE_SECONDS
        supervisor.wait_until(lambda: time.monotonic() >= settled, SETTLE_SECONDS + 5, "start-up")

    def _announce(
        self, supervisor: Supervisor, bind: net.Bind, use_tls: bool, issuer: str, cert_path: Path | None,
        password: str | None,
    ) -> None:
        for line in summary_lines(
            issuer=issuer, local_url=bind.url("https" if use_tls else "http"),
            admin_url=f"{issuer}/{settings.ADMIN_PATH}/", admin_username=ADMIN_USERNAME, password=password,
            api_url=f"{issuer}/{settings.API_PATH}/", endpoints=settings.ENDPOINTS,
            data_dir=Path(settings.DATA_DIR), cert_path=cert_path,
            children={c.name: c.pid for c in supervisor.children},
        ):  # fmt: skip
            self.say(line)
