"""What every page shares: sign-in sessions, CSRF protection, languages, rate limits, the base
template and its helpers. The blueprints (`staff`, `public`, `admin`) hold the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import Babel, format_datetime
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect

from ..accounts import Person
from ..services import Services
from . import i18n

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


class SignedIn(UserMixin):
    """The signed-in person, as Flask-Login wants to see them."""

    def __init__(self, person: Person) -> None:
        self.person = person

    def get_id(self) -> str:
        return f"{self.person.id}.{self.person.credentials}"


def person() -> Person:
    return current_user.person


def init_web(app: Flask, services: Services) -> None:
    settings = services.settings
    app.config.update(
        BABEL_DEFAULT_LOCALE=i18n.DEFAULT,
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,  # a form left open over lunch still submits
        # Scaled out, every web process counts public intake against the same limits (Redis).
        RATELIMIT_STORAGE_URI=settings.broker_url if settings.scaled else "memory://",
    )
    Babel(app, locale_selector=i18n.select_locale)
    csrf.init_app(app)
    limiter.init_app(app)

    login = LoginManager(app)
    login.login_view = "staff.signin"
    login.login_message = ""
    login.session_protection = "strong"

    @login.user_loader
    def load(session_id: str) -> SignedIn | None:
        """The session's person, unless their password changed since it began."""
        user_id, _dot, credentials = session_id.partition(".")
        found = services.accounts.person_by_id(int(user_id)) if user_id.isdigit() else None
        return SignedIn(found) if found and found.credentials == credentials else None

    @app.get("/lang/<code>")
    def choose_language(code: str) -> ResponseReturnValue:
        if code in i18n.LANGUAGES:
            session["lang"] = code
        target = request.referrer or url_for("staff.home")
        return redirect(target if target.startswith(request.host_url) else url_for("staff.home"))

    zone = ZoneInfo(settings.timezone)
    app.jinja_env.globals.update(
        languages=i18n.LANGUAGES,
        locale=i18n.locale,
        html_lang=i18n.html_lang,
        chinese=i18n.chinese,
        status_name=i18n.status_name,
        code_name=i18n.code_name,
        now=lambda: datetime.now(zone),
    )
    app.jinja_env.filters["when"] = _when
    app.before_request(lambda: setattr(g, "zone", zone))


def _when(value: Any, style: str = "short") -> str:
    """A time as the reader reads it, in the site's zone."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(format_datetime(value, style))
