"""WSGI entry point for servers that want a module attribute: `gunicorn service.wsgi:app`."""
from . import create_app

app = create_app()
