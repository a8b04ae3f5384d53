"""The application factory: builds the services, binds them to Flask, registers blueprints."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from .attachments import MAX_BYTES, MAX_FILES
from .config import Settings
from .engine import queries
from .models import utcnow
from .services import Services
from .web import inputs


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        JSON_SORT_KEYS=False,
        # The largest request: an intake form with its most and largest files.
        MAX_CONTENT_LENGTH=MAX_FILES * MAX_BYTES + 1024 * 1024,
    )
    inputs.install(app)  # before the routes: they bind its converter
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable
    app.extensions["complaintflow"] = svc = Services.build(settings)
    # SpiffWorkflow logs every state change at INFO and task data (personal data) at DEBUG.
    logging.getLogger("spiff").setLevel(logging.WARNING)

    from webhooks.intake import bp as webhooks_bp

    from .admin import bp as admin_bp
    from .api import bp as api_bp
    from .auditor import bp as auditor_bp
    from .owner import bp as owner_bp
    from .public import bp as public_bp
    from .staff import bp as staff_bp
    from .web import csrf, init_web

    init_web(app, svc)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # bearer tokens, not cookies: nothing to forge
    app.register_blueprint(public_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(auditor_bp)
    app.register_blueprint(owner_bp)
    app.register_blueprint(webhooks_bp)
    csrf.exempt(webhooks_bp)  # signed by the calling system, not sent from a browser

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """This process answers and so does its database (503 if not). Scaled out, it also
        tells whether a scheduler runs, without a 503 for it (restarting this process would not
        help): until one runs, no timer fires and no message goes out."""
        store = services(app).store
        body: dict[str, Any] = {"status": "ok"}
        try:
            if settings.scaled:  # the read is the database's answer too
                with store.read() as session:
                    silent, until = queries.scheduler_silence(session, utcnow())
                body["scheduler"] = {
                    "running": not silent,
                    "lead_until": until.isoformat() if until else None,
                }
            else:
                store.ping()
        except Exception as exc:  # any failure to answer means unhealthy
            return jsonify(status="unavailable", error=type(exc).__name__), 503
        return jsonify(body)

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError) -> ResponseReturnValue:
        app.logger.error("database error: %s", exc)
        return _error(503, "database_unavailable", "the database does not answer; try again")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        code = (exc.name or "error").lower().replace(" ", "_")
        return _error(exc.code or 500, code, exc.description or "")

    return app


def _error(status: int, code: str, message: str) -> ResponseReturnValue:
    """JSON for the API and machines, a page for people."""
    if request.path.startswith(("/api/", "/healthz")) or not request.accept_mimetypes.accept_html:
        return jsonify(error={"code": code, "message": message}), status
    return render_template("error.html", status=status), status


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions["complaintflow"]
