"""The QR sheet: one code per place (a building, a lift, a bar table, a hotel room), each
opening the procedure's intake form with the place filled in. Print it and put each code up."""

from __future__ import annotations

from typing import Any

import segno
from flask import abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import login_required

from ..app import services
from ..web import i18n, person
from ..web.links import public_url
from . import bp

MAX_PLACES = 200


@bp.route("/qr", methods=["GET", "POST"])
@login_required
def qr_sheet() -> ResponseReturnValue:
    if not person().is_admin:
        abort(403)
    diagrams = services().engine.current_diagrams()
    key = request.form.get("procedure", "")
    places = [
        line.strip()[:200] for line in request.form.get("places", "").splitlines() if line.strip()
    ][:MAX_PLACES]
    codes: list[dict[str, Any]] = []
    if key in diagrams:
        for place in places:
            link = public_url("public.intake", key=key, place=place)
            svg = segno.make(link, error="m").svg_inline(scale=4, title=place)
            codes.append({"place": place, "link": link, "svg": svg})
    return render_template(
        "admin/qr.html",
        diagrams=diagrams,
        key=key,
        places="\n".join(places),
        codes=codes,
        procedure_name=i18n.procedure_name,
    )
