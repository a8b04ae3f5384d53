"""The application factory: builds the services, binds them to Flask, registers blueprints."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from .config import Settings
from .services import Services


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=2 * 1024 * 1024
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable
    app.extensions["complaintflow"] = Services.build(settings)
    # SpiffWorkflow logs every state change at INFO and task data (personal data) at DEBUG.
    logging.getLogger("spiff").setLevel(logging.WARNING)

    from .api import bp as api_bp

    app.register_blueprint(api_bp)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        try:
            services(app).store.ping()
        except Exception as exc:  # any failure to answer means unhealthy
            return jsonify(status="unavailable", error=type(exc).__name__), 503
        return jsonify(status="ok")

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError) -> ResponseReturnValue:
        app.logger.error("database error: %s", exc)
        body = {
            "code": "database_unavailable",
            "message": "the database does not answer; try again",
        }
        return jsonify(error=body), 503

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify(error={"code": code, "message": exc.description}), exc.code or 500

    return app


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions["complaintflow"]
