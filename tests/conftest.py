"""Shared fixtures: a tiny in-file corpus and model for unit tests, the real default model for
behaviour and end-to-end tests (trained once per test session into a temporary directory)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from classifier import Example, Post, TrainParams, train_model
from classifier.workflow import train_and_save

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Tests never touch a real data directory or database: a throwaway one for the session."""
    import tempfile

    os.environ["POSTSIEVE_DATA_DIR"] = tempfile.mkdtemp(prefix="postsieve-tests-")
    for name in ("POSTSIEVE_DATABASE_URL", "POSTSIEVE_MODEL_DIR", "POSTSIEVE_OPEN_CLASSIFY", "POSTSIEVE_CORPUS"):
        os.environ.pop(name, None)

CATS = ["3D Segmentation", "Cell Tracking", "Fiji / ImageJ"]

OK_POSTS = [
    ("Watershed splits my nuclei in two", "I run a distance transform and watershed on 3D nuclei but large ones get split. Would h-maxima help? Sample stack attached.", CATS[0]),
    ("", "Thanks, lowering the sigma fixed it.", CATS[0]),
    ("StarDist 3D on anisotropic data", "My voxels are 0.2 x 0.2 x 1.0 um. Should I pass anisotropy to the config before training StarDist? See https://github.com/stardist/stardist/issues/100", CATS[0]),
    ("Label image to meshes", "How can I turn a 3D label image into surface meshes and measure surface area per object?", CATS[0]),
    ("TrackMate loses cells after division", "With the LAP tracker, daughters are not linked to the mother. I enabled splitting but gap closing seems off.", CATS[1]),
    ("", "Same problem here with TrackMate 7 on Windows.", CATS[1]),
    ("Drift correction before tracking", "Is it better to register the time lapse before tracking, or let the tracker handle the drift?", CATS[1]),
    ("Lineage export", "Is there a way to export lineage trees from Mastodon as a table? The docs at https://mastodon.readthedocs.io were not clear to me.", CATS[1]),
    ("Macro to batch threshold", "My macro runs setAutoThreshold on each file but the results table is empty at the end. Here is the code: run(\"Analyze Particles...\");", CATS[2]),
    ("", "Which Fiji version are you on? Update sites can break this.", CATS[2]),
    ("Bio-Formats import of CZI", "Opening a CZI series in Fiji only shows the first scene; how do I import all scenes at once?", CATS[2]),
    ("ROI Manager measurements", "How can I measure the same ROIs on every channel of a hyperstack with the ROI Manager?", CATS[2]),
]
SPAM_POSTS = [
    ("Rocket launch delayed", "The space agency delayed the launch by two days because of weather. To get more space news, you can visit StarDaily official website.", CATS[0], ["To get more space news, you can visit StarDaily official website."]),
    ("", "Thanks, useful topic! Get your essay written today at bestessaysfast.com", CATS[1], ["Get your essay written today at bestessaysfast.com"]),
    ("Printer offline", "Call the printer support helpline now 1 8 0 0 5 5 5 0 1 9 9 toll free for help.", CATS[2], ["Call the printer support helpline now 1 8 0 0 5 5 5 0 1 9 9 toll free for help."]),
    ("Best casino bonus", "Win real money with free spins at luckyspinz.xyz, best casino deals online today.", CATS[0], ["Win real money with free spins at luckyspinz.xyz, best casino deals online today."]),
    ("", "Buy cheap pills without prescription at medsnow.shop, fast delivery.", CATS[1], ["Buy cheap pills without prescription at medsnow.shop, fast delivery."]),
    ("Crypto signals", "Join our telegram for daily crypto signals and earn money fast, visit cryptoprofit.io now.", CATS[2], ["Join our telegram for daily crypto signals and earn money fast, visit cryptoprofit.io now."]),
    ("Football results", "The home side won three to one after a late goal. For the latest football updates check out GoalZone site.", CATS[0], ["For the latest football updates check out GoalZone site."]),
    ("", "Great thread. We offer cheap replica watches at watchreplicas.net, best prices.", CATS[1], ["We offer cheap replica watches at watchreplicas.net, best prices."]),
    ("Need a loan?", "Instant payday loans approved in ten minutes, apply online today at quickcash.co.", CATS[2], ["Instant payday loans approved in ten minutes, apply online today at quickcash.co."]),
    ("Free download", "Free download full version cracked software keygen at crackzone.info, click here.", CATS[0], ["Free download full version cracked software keygen at crackzone.info, click here."]),
]
OFF_TOPIC_POSTS = [
    ("Best espresso grind size?", "My espresso shots run too fast even at the finest setting of my grinder. Should I change beans?", CATS[0]),
    ("Godot collision layers", "In Godot 4 my player falls through the floor when I change collision layers. Any idea?", CATS[1]),
    ("Election results", "The coalition won a narrow majority yesterday after a long count in three districts.", CATS[2]),
    ("Sourdough starter", "My sourdough starter smells like acetone after a week. Is it dead or just hungry?", CATS[0]),
    ("Excel VLOOKUP returns N/A", "VLOOKUP gives #N/A although the value is clearly in the table. Trailing spaces maybe?", CATS[1]),
    ("Half marathon training", "Five weeks to my first half marathon. Should I do a 20 km run before race day?", CATS[2]),
    ("", "who is still listening to this song in 2026?", CATS[0]),
    ("Chess opening advice", "I keep losing with the French defence against strong club players; what should I read?", CATS[1]),
    ("Visa for a conference", "How long does a visitor visa take for a trip to Canada next spring?", CATS[2]),
    ("Arduino servo jitter", "My servo jitters when powered from the Arduino 5V pin. Separate supply?", CATS[0]),
]


def tiny_examples() -> list[Example]:
    """About thirty posts in three labels: enough to fit and exercise every code path fast."""
    out = []
    for i, (title, body, cat) in enumerate(OK_POSTS):
        out.append(Example(Post(f"ok{i}", title, body, cat), "ok", kind="question"))
    for i, (title, body, cat, promo) in enumerate(SPAM_POSTS):
        out.append(Example(Post(f"spam{i}", title, body, cat), "spam", kind="misc", promo=tuple(promo)))
    for i, (title, body, cat) in enumerate(OFF_TOPIC_POSTS):
        out.append(Example(Post(f"off{i}", title, body, cat), "off_topic", kind="misc"))
    return out


def flip_a_byte(path) -> None:
    """Tamper with a file as a bad copy would: one byte in its middle inverted."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def save_for_test(model, root, created=None):
    """Save a model as a version under `root` with placeholder training facts.

    Pass distinct `created` datetimes to save several versions of one model without waiting
    (version ids carry the creation second).
    """
    from classifier import artifacts

    return artifacts.save_model(model, root, data_sha256="0" * 64, label_counts={}, metrics={}, params={},
                                created=created)


@pytest.fixture(scope="session")
def tiny_model():
    """A model fitted on the tiny corpus (seconds); for mechanics, not for quality."""
    return train_model(tiny_examples(), TrainParams(folds=3, min_df=1)).model


@pytest.fixture(scope="session")
def default_models_dir(tmp_path_factory) -> Path:
    """A models directory holding the default model trained from training_data/ (once per session).

    Set POSTSIEVE_TEST_MODEL_DIR to reuse an existing models directory and skip training.
    """
    reuse = os.environ.get("POSTSIEVE_TEST_MODEL_DIR")
    if reuse:
        _warn_if_trained_on_another_corpus(Path(reuse))
        return Path(reuse)
    out = tmp_path_factory.mktemp("models")
    train_and_save([ROOT / "training_data"], out)
    return out


def _warn_if_trained_on_another_corpus(models_dir: Path) -> None:
    """A reused model from before a corpus change tests yesterday's corpus: say so, once."""
    import warnings

    from classifier import artifacts, load_corpus

    try:
        trained_on = artifacts.read_manifest(models_dir / artifacts.active_version(models_dir))["training_data"]["sha256"]
    except Exception:  # no model there: the tests that need one fail and say why
        return
    if trained_on != load_corpus([ROOT / "training_data"]).sha256:
        warnings.warn(f"POSTSIEVE_TEST_MODEL_DIR={models_dir} was trained on another corpus than training_data/ "
                      "holds now; unset it (or retrain into it) to test the current corpus", stacklevel=2)


@pytest.fixture(scope="session")
def default_model(default_models_dir):
    from classifier import load_active

    return load_active(default_models_dir)


POSTGRES_SKIP_REASON = ("PostgreSQL tests skipped: set POSTSIEVE_TEST_POSTGRES_URL to a server "
                        "(.ci/run points it at the CI machine's, see DEVELOPERS.md)")


def _postgres_schema_url(base: str):
    """A fresh schema on the test server, and a function that drops it again."""
    import uuid

    import sqlalchemy as sa

    from classifier.database import create_engine, normalise_url

    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = normalise_url(base).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop():
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database on each backend: a SQLite file, and a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'postsieve.db'}"
        return
    base = os.environ.get("POSTSIEVE_TEST_POSTGRES_URL")
    if not base:
        pytest.skip(POSTGRES_SKIP_REASON)
    url, drop = _postgres_schema_url(base)
    try:
        yield url
    finally:
        drop()


@pytest.fixture()
def database(database_url):
    """A migrated Database on each backend."""
    from classifier.database import Database

    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()
