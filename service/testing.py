"""The app's test client: it closes each response, as a WSGI server does once it has sent it."""
from __future__ import annotations

from flask.testing import FlaskClient


class ClosingClient(FlaskClient):
    """Flask's test client, buffered by default.

    Flask's own client leaves a response open until the test closes it, so work the app defers
    until after the answer is sent (`api.after_response`: metrics, the decision log) would not
    have run when a test looks. Buffering reads the body and closes the response at once.
    """

    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)
