"""Apps on the tiny model with a throwaway SQLite database, and API keys for them."""
import pytest

from service import create_app
from service.keys import KeyStore
from tests.conftest import save_for_test


@pytest.fixture()
def tiny_models_dir(tiny_model, tmp_path):
    save_for_test(tiny_model, tmp_path / "models")
    return tmp_path / "models"


@pytest.fixture()
def make_app(tiny_models_dir, tmp_path):
    """Build an app; keyword arguments override the test configuration."""
    def make(**config):
        settings = {"TESTING": True, "MODEL_DIR": str(tiny_models_dir),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'postsieve.db'}", "OPEN_CLASSIFY": False}
        settings.update(config)
        return create_app(settings)
    return make


@pytest.fixture()
def app(make_app):
    """Classify open (as on a private network); feedback needs a key."""
    return make_app(OPEN_CLASSIFY=True)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def make_key(app):
    """Create a key in `app`'s database: make_key("classify", "feedback", rate=None) -> plain key."""
    def make(*scopes, rate=None, name="forum"):
        plain, _ = KeyStore(app.extensions["postsieve.database"]).create(name, scopes, rate_per_minute=rate)
        return plain
    return make


def bearer(key):
    return {"Authorization": f"Bearer {key}"}
