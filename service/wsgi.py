"""WSGI entry point for servers that want a module attribute: `gunicorn service.wsgi:app`."""
from classifier.errors import ArtifactError
from classifier.types import Post

from . import create_app

app = create_app()

# Score one post before serving. The model builds some tables on first use (the feature names
# that reasons need took 0.5-1.1 s on the default model); under `gunicorn --preload` this runs
# once in the master, so the workers inherit them instead of each worker's first request
# paying for them.
try:
    app.extensions["postsieve.registry"].current().score_one(Post("warm-up", "", "Thanks, that fixed it."))
except ArtifactError:
    pass  # no model yet: /readyz says so, and the first request after one appears pays instead
