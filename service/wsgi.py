"""WSGI entry point for servers that want a module attribute: `gunicorn service.wsgi:app`."""
import logging

from classifier.errors import ArtifactError
from classifier.types import Post

from . import create_app

# The library's lines (a model switched or refused, decisions that could not be written) in the
# server's log with a time, the process and a level, as gunicorn's own lines have; without a
# handler Python printed the bare message, and info lines not at all.
_library_log = logging.getLogger("classifier")
if not _library_log.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
                                            "%Y-%m-%d %H:%M:%S %z"))
    _library_log.addHandler(_handler)
    _library_log.setLevel(logging.INFO)

app = create_app()

# Score one post before serving. The model builds some tables on first use (the feature names
# that reasons need took 0.5-1.1 s on the default model); under `gunicorn --preload` this runs
# once in the master, so the workers inherit them instead of each worker's first request
# paying for them.
try:
    app.extensions["postsieve.registry"].current().score_one(Post("warm-up", "", "Thanks, that fixed it."))
except ArtifactError:
    pass  # no model yet: /readyz says so, and the first request after one appears pays instead
