"""Behaviour of the trained default model on cases the team wrote for these tests (none of them
is in training_data/): invariance, directional expectations and minimum functionality."""
import pytest

from classifier import Post

pytestmark = pytest.mark.behaviour

SPACE_ARTICLE = (
    "The national space agency confirmed on Tuesday that its lunar relay satellite completed a "
    "third orbit-raising burn, placing it on course for a halo orbit around the Earth-Moon L2 "
    "point. Engineers said the engine fired for 212 seconds, slightly longer than planned, "
    "because the spacecraft carried more propellant than the mission needed.\n"
    "The relay will let landers on the far side of the Moon send data home. Two such landers are "
    "scheduled for next year, one of them carrying a small seismometer built by a university "
    "consortium.\u201cWe are very pleased with how the burn went,\u201d the mission director told "
    "reporters, adding that the next manoeuvre is planned for early December.The agency also said "
    "that the satellite's high-gain antenna had been deployed and tested.To get more space news, "
    "you can visit Orbitwire official website. Launch windows for the landers depend on "
    "the relay reaching its final orbit on schedule."
)
PROMO = "To get more space news, you can visit Orbitwire official website."

SEGMENTATION_QUESTION = Post(
    "seg1",
    "Cellpose 3D merges touching nuclei in organoid stacks",
    "I am segmenting nuclei in cleared organoids (z-step 1 um, xy 0.3 um) with Cellpose in 3D "
    "mode. Touching nuclei are often merged into one label, especially in the dense core. I tried "
    "diameter 18 and 25 and flow_threshold 0.6. Would anisotropy=3.3 help, or should I train a "
    "custom model? My script is here: https://github.com/jdoe-lab/organoid-seg/blob/main/run_cellpose.py",
    "3D Segmentation",
)


def test_space_article_with_promo_sentence_is_spam_and_highlighted(default_model):
    post = Post("a1", "Lunar relay satellite completes key engine burn", SPACE_ARTICLE, "3D Segmentation")
    scored = default_model.score_one(post)
    assert scored.label == "spam"
    assert scored.decision in ("review", "block")
    first = scored.highlights[0]
    assert first.field == "body"
    assert PROMO in post.body[first.start:first.end]
    assert len(post.body[first.start:first.end]) < len(PROMO) + 80  # the sentence, not the article


def test_same_article_without_promo_is_not_spam(default_model):
    body = SPACE_ARTICLE.replace(PROMO + " ", "")
    scored = default_model.score_one(Post("a2", "Lunar relay satellite completes key engine burn", body, "3D Segmentation"))
    assert scored.label != "spam"
    assert scored.decision != "block"


def test_segmentation_question_with_github_link_is_allowed(default_model):
    scored = default_model.score_one(SEGMENTATION_QUESTION)
    assert scored.label == "ok"
    assert scored.decision == "allow"


@pytest.mark.parametrize("body", ["thanks, that worked", "Thanks! Setting the anisotropy fixed it.",
                                  "works now, cheers"])
def test_short_thanks_reply_is_allowed(default_model, body):
    scored = default_model.score_one(Post("t", "", body, "3D Segmentation"))
    assert scored.decision == "allow", scored


# -- invariance ---------------------------------------------------------------------------
@pytest.mark.parametrize("old, new", [
    ("jdoe-lab", "mrossi-group"),                        # a username in the URL
    ("run_cellpose.py", "segment_organoids_v2.py"),      # the URL path
    ("diameter 18 and 25", "diameter 14 and 31"),        # numbers
    ("z-step 1 um", "z-step 2 um"),
])
def test_invariance_keeps_the_label(default_model, old, new):
    original = default_model.score_one(SEGMENTATION_QUESTION)
    changed = SEGMENTATION_QUESTION.__class__(
        SEGMENTATION_QUESTION.id, SEGMENTATION_QUESTION.title, SEGMENTATION_QUESTION.body.replace(old, new),
        SEGMENTATION_QUESTION.category)
    assert changed.body != SEGMENTATION_QUESTION.body
    scored = default_model.score_one(changed)
    assert scored.label == original.label
    assert scored.decision == original.decision


@pytest.mark.parametrize("name", ["Anna", "dr_kowalski", "Sam W."])
def test_invariance_signature_name(default_model, name):
    post = Post("s", "", f"Setting the background subtraction radius to 50 px fixed it for me.\n\nCheers,\n{name}", "Fiji / ImageJ")
    assert default_model.score_one(post).label == "ok"


# -- directional ----------------------------------------------------------------------------
@pytest.mark.parametrize("promo", [
    "For the best essay writing help, visit Quillmaster official website.",
    "Get cheap car insurance quotes today at lowquotehub dot com.",
    "To get more football news, you can visit Goalpost Daily official website.",
])
def test_adding_a_promotional_sentence_raises_spam(default_model, promo):
    base = SEGMENTATION_QUESTION
    with_promo = Post(base.id, base.title, base.body.replace("Would anisotropy", promo + " Would anisotropy"), base.category)
    assert default_model.score_one(with_promo).scores["spam"] > default_model.score_one(base).scores["spam"]


@pytest.mark.parametrize("category", ["Image Data Management", "Light-sheet & Large Data"])
def test_moving_an_on_topic_question_to_an_unrelated_category_raises_off_topic(default_model, category):
    post = Post("m", "TrackMate links daughter cells to the wrong parent after mitosis",
                "In my time lapse of dividing HeLa cells TrackMate's LAP tracker with track splitting enabled "
                "assigns daughters to neighbouring mothers. Linking max distance is 15 px, gap closing 2 frames. "
                "Should I lower the split distance or use the Kalman tracker for this?", "Cell Tracking")
    here = default_model.score_one(post).scores["off_topic"]
    moved = Post(post.id, post.title, post.body, category)
    assert default_model.score_one(moved).scores["off_topic"] > here


def test_adding_a_phone_number_pitch_raises_spam(default_model):
    base = Post("p", "", "Which Fiji update site has the MorphoLibJ plugins? I cannot find them.", "Fiji / ImageJ")
    pitch = Post("p", "", base.body + " For instant help call our support team now at 1 8OO 555 0142.", "Fiji / ImageJ")
    assert default_model.score_one(pitch).scores["spam"] > default_model.score_one(base).scores["spam"]


# -- minimum functionality: off-topic -------------------------------------------------------------
@pytest.mark.parametrize("title, body", [
    ("Burr grinder for pour-over?", "Is a hand burr grinder good enough for pour-over coffee, or do I need an electric one for an even grind?"),
    ("Godot 4 rigid body jitter", "My RigidBody2D jitters when it rests on a moving platform in Godot 4.2. Physics ticks are 60. How do I fix it?"),
])
def test_off_topic_posts_are_flagged_not_blocked(default_model, title, body):
    scored = default_model.score_one(Post("o", title, body, "napari & Python"))
    assert scored.label == "off_topic"
    assert scored.decision == "review"
