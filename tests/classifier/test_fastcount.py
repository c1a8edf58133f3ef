"""The compiled scoring step (`classifier/_fastcount.c`) against the numpy path it replaces.

Both paths must give the same labels, decisions, highlights and reasons, and scores equal to
rounding, on every post of the bundled corpus. CI sets POSTSIEVE_REQUIRE_COMPILED=1, so a build
that silently lost the extension fails there instead of testing only the fallback.
"""
import os
from array import array
from functools import partial

import numpy as np
import pytest

from classifier import Post, model as model_module
from classifier.dataset import load_corpus

from tests.conftest import ROOT
from tests.classifier.test_model import POSTS

def WordCache():
    return model_module._fastcount.WordCache()


def word_cache(**entries):
    cache = WordCache()
    for word, packed in entries.items():
        cache[word] = packed
    return cache


compiled_only = pytest.mark.skipif(not model_module.COMPILED, reason="classifier._fastcount is not built here "
                                   "(no C compiler at install time): scoring uses the numpy path")


def test_compiled_step_is_built_where_required():
    if os.environ.get("POSTSIEVE_REQUIRE_COMPILED") == "1":
        assert model_module.COMPILED, "classifier._fastcount did not build: is a C compiler installed?"
    else:
        assert model_module.COMPILED == (model_module._fastcount is not None)


def numpy_twin(model):
    """The same model object's scoring with the numpy path forced."""
    twin = model.__class__.__new__(model.__class__)
    twin.__setstate__(model.__getstate__())
    twin._score_parts = partial(twin._score_parts, compiled=False)
    return twin


@compiled_only
def test_compiled_and_numpy_paths_agree_on_the_corpus(default_model):
    twin = numpy_twin(default_model)
    posts = [e.post for e in load_corpus([ROOT / "training_data"]).examples] + POSTS
    worst_logit = worst_score = 0.0
    for post in posts:
        _, z = default_model.segment_logits(post)
        _, z_numpy = default_model.segment_logits(post, compiled=False)
        worst_logit = max(worst_logit, float(np.max(np.abs(z - z_numpy))))
        fast, slow = default_model.score_one(post), twin.score_one(post)
        assert (fast.label, fast.decision) == (slow.label, slow.decision), post.id
        assert [h[:3] for h in fast.highlights] == [h[:3] for h in slow.highlights], post.id
        np.testing.assert_allclose([h[3] for h in fast.highlights], [h[3] for h in slow.highlights], rtol=1e-9)
        # the same reasons in the same order (equal contributions go by position on both paths)
        assert [r.feature for r in fast.reasons] == [r.feature for r in slow.reasons], post.id
        np.testing.assert_allclose([r.weight for r in fast.reasons], [r.weight for r in slow.reasons],
                                   rtol=1e-9, atol=1e-12)
        worst_score = max(worst_score, *(abs(fast.scores[k] - slow.scores[k]) for k in fast.scores))
    # only the order of additions differs
    assert worst_logit < 1e-9 and worst_score < 1e-12


@compiled_only
def test_compiled_counts_equal_the_numpy_counts(tiny_model):
    for post in POSTS + [Post("x5", "Call +1 (555) 010-0199", "Mail a@b.com. See www.x.com/p. " * 40)]:
        _, counts, rows = tiny_model._score_parts(post)
        _, reference, z_numpy = tiny_model._numpy_count_logits(post)
        assert np.frombuffer(counts.rows, dtype=np.int64).tolist() == reference.rows.tolist()
        assert np.frombuffer(counts.idx, dtype=np.int64).tolist() == reference.idx.tolist()
        assert counts.n_whole == reference.n_whole and counts.n_rows == reference.n_rows
        np.testing.assert_allclose(np.frombuffer(counts.x), reference.x, rtol=1e-12)
        np.testing.assert_array_equal(np.frombuffer(counts.w).reshape(-1, 3), reference.w)
        np.testing.assert_allclose(np.array(rows), z_numpy, rtol=1e-12, atol=1e-12)


@compiled_only
def test_compiled_lookup_finds_the_same_entries_as_the_python_loop(tiny_model):
    """Exact equality, word cache misses included: the counts are built from these entries."""
    from classifier import features

    fresh = numpy_twin(tiny_model)  # an empty word cache: every first word goes through word_entries
    for model in (fresh, tiny_model):
        odd = Post("x6", "Ünïcödé títle ½", "naïve café — 𝔣𝔞𝔫𝔠𝔶 text, email me at a@b.org or +44 20 7946 0958")
        for post in POSTS + [odd]:
            segs, entries, lengths, n_seg_entries = model._entries(post)
            parts = features.segments_parts([seg.text for seg in segs])
            got, got_lengths = model_module._fastcount.lookup_entries(parts, model.vocabulary_, model._pair_table(),
                                                                      model._word_cache, model._word_entries)
            assert array("q", got).tolist() == entries[:n_seg_entries].tolist()
            assert array("q", got_lengths).tolist() == lengths.tolist()
            post_level = features.post_level_tokens(segs, [extra for _, extra in parts])
            got, _ = model_module._fastcount.lookup_entries(parts, model.vocabulary_, model._pair_table(),
                                                            model._word_cache, model._word_entries, post_level)
            assert array("q", got).tolist() == entries.tolist()


@compiled_only
@pytest.mark.parametrize("parts, error", [
    ([(["a"],)], TypeError),
    ([("a b", [])], TypeError),
    ([([1, 2], [])], TypeError),
])
def test_lookup_entries_refuses_malformed_parts(tiny_model, parts, error):
    with pytest.raises(error):
        model_module._fastcount.lookup_entries(parts, tiny_model.vocabulary_, tiny_model._pair_table(), WordCache(),
                                               tiny_model._word_entries)


@compiled_only
def test_a_word_cache_entry_that_is_not_packed_bytes_is_refused(tiny_model):
    with pytest.raises(TypeError, match="packed int64"):
        model_module._fastcount.lookup_entries([(["word"], [])], tiny_model.vocabulary_, tiny_model._pair_table(),
                                               word_cache(word=b"123"), tiny_model._word_entries)
    with pytest.raises(TypeError, match="packed int64"):  # not even the id
        model_module._fastcount.lookup_entries([(["word"], [])], tiny_model.vocabulary_, tiny_model._pair_table(),
                                               word_cache(word=b""), tiny_model._word_entries)


@compiled_only
def test_equal_contributions_are_chosen_by_position_on_both_paths(default_model):
    """Terms that always occur together share one weight (the word "i" and its n-gram "c: i "):
    which of them make the top ten must not depend on the path (or on numpy's partition order)."""
    post = Post("tie", "", "my bread starter died while i was away at a workshop. can i still save it??")
    twin = numpy_twin(default_model)
    fast, slow = default_model.score_one(post), twin.score_one(post)
    weights = [round(r.weight, 12) for r in fast.reasons]
    assert len(weights) > len(set(weights)), "no tie among the reasons: the test no longer tests ties"
    assert [r.feature for r in fast.reasons] == [r.feature for r in slow.reasons]


def python_combine(model, post, segs, rows):
    """What `_fastcount.combine` replaces on the compiled path: the Python steps, as the numpy path runs them."""
    phi, best = model._post_phi(post, segs, rows)
    probs = model._probabilities(phi)
    label = probs.index(max(probs))
    marked = model._highlights(segs, rows, model_module.LABELS[label])
    order = {(s.field, s.start, s.end): i for i, s in enumerate(segs)}
    return phi, best, probs, label, [(order[h[:3]], h[3]) for h in marked]


def compiled_combine(model, post, segs, rows):
    return model._compiled_combine(post, segs, rows)


@compiled_only
def test_combine_equals_the_python_steps_exactly(default_model):
    """The same floating-point operations in the same order: equal to the last bit, on the corpus
    (filed in its own category and in another), on posts without sentences and on ties."""
    categories = default_model.categories
    posts = [e.post for e in load_corpus([ROOT / "training_data"]).examples] + POSTS
    for n, post in enumerate(posts):
        segs, _, rows = default_model._score_parts(post)
        for filed in (post.category, categories[n % len(categories)], None):
            filed_post = Post(post.id, post.title, post.body, filed)
            assert compiled_combine(default_model, filed_post, segs, rows) == \
                python_combine(default_model, filed_post, segs, rows), (post.id, filed)
    # equal sentences: highlights go by position; a spam label with no sentence above the bar
    # still shows its likeliest one; no sentences at all
    whole = [0.1, 2.0, -1.0] + [0.0] * len(categories)
    for seg_rows in ([[0.0, 3.0, 0.0]] * 5, [[0.0, 0.1, 0.2], [0.0, 0.1, 0.2], [1.0, 0.0, 0.0]], []):
        segs = [model_module.features.Segment("body", i, i + 1, "x") for i in range(len(seg_rows))]
        rows = [list(r) for r in seg_rows] + [whole]
        post = Post("tie", "", "x")
        assert compiled_combine(default_model, post, segs, rows) == python_combine(default_model, post, segs, rows)


@compiled_only
def test_combine_with_odd_highlight_limits_matches_python(default_model, monkeypatch):
    """No highlights allowed (a spam label still shows its likeliest sentence), and a limit far
    above the number of sentences (never sizes a buffer from it)."""
    post = Post("p", "", "Launch moved to Friday. To get more space news, you can visit StarDaily official "
                         "website. The crew is ready.")
    segs, _, rows = default_model._score_parts(post)
    for limit in (0, 1, 2**61):
        monkeypatch.setattr(model_module, "MAX_HIGHLIGHTS", limit)
        assert compiled_combine(default_model, post, segs, rows) == python_combine(default_model, post, segs, rows)
    assert compiled_combine(default_model, post, segs, rows)[3] == 1  # the spam label the first case needs


@compiled_only
@pytest.mark.parametrize("args, error, message", [
    (([],), ValueError, "whole-post row"),
    (([(0.0, 1.0, 2.0)],), ValueError, "list of at least 3 floats"),
    (([[0.0, 1.0]],), ValueError, "list of at least 3 floats"),
    (([[0.0, 1, 2.0]],), TypeError, "must hold floats"),
    (([[0.0, 1.0, 2.0]], 0), ValueError, "not a column"),
    (([[0.0, 1.0, 2.0, "x"]], 0), TypeError, "must hold floats"),
    (([[0.0, 1.0, 2.0]], -1, 0.0, [((1.0,) * 6, 0.0)] * 2), TypeError, "three"),
    (([[0.0, 1.0, 2.0]], -1, 0.0, 5), TypeError, "not iterable"),
    (([[0.0, 1.0, 2.0]], -1, 0.0, None, 0.5, -1), ValueError, "max_highlights"),
])
def test_combine_refuses_malformed_input(args, error, message):
    defaults = ([[0.0, 1.0, 2.0]], -1, 0.0, [((1.0,) * 6, 0.0)] * 3, 0.5, 3)
    with pytest.raises(error, match=message):
        model_module._fastcount.combine(*args, *defaults[len(args):])


@compiled_only
@pytest.mark.parametrize("change, message", [
    (dict(lengths=array("q", [5])), "sizes do not fit"),
    (dict(entries=array("q", [1, 2, 999_999_999])), "outside the vocabulary"),
    (dict(entries=array("q", [0])), "outside the vocabulary"),
    (dict(lengths=array("q", [-1]), n_segs=1), "negative segment length"),
    (dict(lengths=array("q", [4]), n_segs=1), "exceed the entries"),
    (dict(bias=np.zeros(2)), "sizes do not fit"),
    # sizes that overflow 64-bit arithmetic if multiplied or added unchecked
    (dict(lengths=array("q", [2**63 - 1, 2**63 - 1, 3]), n_segs=3), "exceed the entries"),
    (dict(n_segs=2**61), "sizes do not fit"),
    (dict(category_weights=np.zeros(3)), "category weights"),
])
def test_count_logits_refuses_inconsistent_input(tiny_model, change, message):
    args = dict(entries=array("q", [1, 2, 3]), lengths=array("q"), n_segs=0, table=tiny_model.table_,
                category_weights=tiny_model.category_weights_, bias=tiny_model.bias_) | change
    with pytest.raises(ValueError, match=message):
        model_module._fastcount.count_logits(*args.values())


@compiled_only
def test_reason_terms_refuses_inconsistent_input(tiny_model):
    _, counts, _ = tiny_model._score_parts(POSTS[0])
    with pytest.raises(ValueError, match="sizes do not fit"):
        model_module._fastcount.reason_terms(counts.rows[:-8], counts.idx, counts.x, counts.w, counts.n_whole,
                                             counts.n_rows - 1, -1, (1.0,) * 6, 10, tiny_model._term_names(), [])
    with pytest.raises(ValueError, match="no name"):
        model_module._fastcount.reason_terms(counts.rows, counts.idx, counts.x, counts.w, counts.n_whole,
                                             counts.n_rows - 1, -1, (1.0,) * 6, 10, [], [])
    with pytest.raises(TypeError, match="extras"):
        model_module._fastcount.reason_terms(counts.rows, counts.idx, counts.x, counts.w, counts.n_whole,
                                             counts.n_rows - 1, -1, (1.0,) * 6, 10, tiny_model._term_names(),
                                             [("sentence count", 1)])


@compiled_only
def test_a_word_callback_that_changes_the_words_does_not_crash(tiny_model):
    """The word_entries callback is Python code: if it empties the list being read, the C loop
    must notice, not read freed memory."""
    words = ["alpha", "beta", "gamma", "delta"]

    def shrinking(word):
        words.clear()
        return array("q", [-1]).tobytes()

    entries, lengths = model_module._fastcount.lookup_entries([(words, [])], tiny_model.vocabulary_,
                                                              tiny_model._pair_table(), WordCache(), shrinking)
    assert entries == b"" and array("q", lengths).tolist() == [0]


@compiled_only
def test_logits_are_a_writable_array_on_both_paths(tiny_model):
    for compiled in (True, False):
        _, z = tiny_model.segment_logits(POSTS[0], compiled=compiled)
        z[0, 0] += 1.0


def score_without_the_compiled_step(models_dir, stand_in: str) -> str:
    """Score a spam post in a fresh interpreter where `stand_in` (Python source) has replaced
    classifier._fastcount in sys.modules; the scoring path must not be the compiled one."""
    import subprocess
    import sys

    script = (
        f"import sys, types\n{stand_in}\n"
        "from classifier import Post, load_active, model\n"
        "assert not model.COMPILED\n"
        f"m = load_active({str(models_dir)!r})\n"
        "s = m.score_one(Post('1', 'Otsu on a stack', 'Visit our official website for the best deals today.'))\n"
        "print(s.label, s.decision, len(s.reasons))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_the_compiled_step_scoring_falls_back_to_numpy(default_models_dir):
    """What a machine without a C compiler runs: the import fails and scoring still works."""
    out = score_without_the_compiled_step(default_models_dir, "sys.modules['classifier._fastcount'] = None")
    label, decision, n_reasons = out.split()
    assert label == "spam" and decision in ("review", "block") and int(n_reasons) > 0


@pytest.mark.parametrize("version", ["", "old.VERSION = 1\n"])
def test_a_build_from_another_c_file_is_not_used(default_models_dir, version):
    """A module built from an older C file (without VERSION, or another one): scoring takes the
    Python and numpy path instead of calling functions whose signatures changed."""
    out = score_without_the_compiled_step(default_models_dir, (
        "old = types.ModuleType('classifier._fastcount')\n"
        "old.words = lambda text: []\n"  # what an old build has, minus the newer steps
        f"{version}"
        "sys.modules['classifier._fastcount'] = old\n"
        "from classifier import features, text\n"
        "assert features._compiled_words is None and text._compiled_plain_normalise is None"))
    assert out.split()[0] == "spam"


def test_the_built_module_has_the_interface_this_code_calls():
    from classifier import compiled

    if model_module.COMPILED:
        assert compiled.fastcount.VERSION == compiled.INTERFACE


WORD_EDGE_CASES = [
    "", "   ", "don't stop", "'quoted' words''", "a''b", "it's'", "x_y__z", "Version 1.2.3 and 2024-11-26",
    "١٢٣ arabic digits, ४२ devanagari, ² superscript, ½ fraction, Ⅻ roman", "ǅemal İstanbul STRASSE ß",
    "e\u0301te combining accent", "zero\u200bwidth", "日本語のテキスト", "𝔣𝔞𝔫𝔠𝔶 😀 emoji", "12ab34'56cd",
    "\ud800 lone surrogate a\udfffb", "tab\tand\nnewline", "'", "0'0", "a'1", "x" * 5000 + "'" + "9" * 5000,
]


@compiled_only
def test_compiled_words_equal_the_regex_words_on_the_corpus_and_edge_cases():
    from classifier import features

    texts = [t for e in load_corpus([ROOT / "training_data"]).examples for t in (e.post.title, e.post.body)]
    for text in texts + WORD_EDGE_CASES:
        assert features.words(text) == features.regex_words(text), text[:80]


@compiled_only
@pytest.mark.parametrize("seed, common, p_common, top, n", [
    # any text: the four-byte and two-byte paths
    (7, "aZ09_'\u2019 \n\t-.,:;!?@#/\u0663\u0969\u00b2\u00bd\u216b\u01c5\u00df\u0130\u0301\u200b\u65e5\U0001f600",
     0.7, 0x2FFFF, 4000),
    # Latin-1 text, the one-byte path: every character below 256, superscripts (not decimal)
    (8, "aZ09' \n-.\u00aa\u00b2\u00b5\u00ba\u00bc\u00df\u00e9\u00ff\u00a0\u00ad", 0.6, 255, 6000),
])
def test_compiled_words_equal_the_regex_words_on_random_text(seed, common, p_common, top, n):
    import random

    from classifier import features

    rng = random.Random(seed)
    for _ in range(n):
        text = "".join(rng.choice(common) if rng.random() < p_common else chr(rng.randint(0, top))
                       for _ in range(rng.randint(0, 60)))
        assert features.words(text) == features.regex_words(text), repr(text)


TOKEN_EDGE_CASES = WORD_EDGE_CASES + [
    "see https://x.org/a b", "a: b c d", "... --- !!!", "one two three", "one two", "x\x1cy\x1fz\x85w\u3000v",
    "e.g. fig. 3 a b", "_ __ ___ a b c", "\u00a0a\u2028b\u2029c\x0bd\x0ce",
]


@compiled_only
def test_compiled_token_counts_equal_str_split_on_the_corpus_and_random_unicode():
    import random

    from classifier import features

    rng = random.Random(11)
    common = "aZ09_'’ \n\t\x0b\x1c\x85\u00a0\u2028\u3000-.,:;!?@#/٣²½ǅß日😀"
    randoms = ["".join(rng.choice(common) if rng.random() < 0.7 else chr(rng.randint(0, 0x2FFFF))
                       for _ in range(rng.randint(0, 40))) for _ in range(4000)]
    segments = [s.text for e in load_corpus([ROOT / "training_data"]).examples for s in features.segments(e.post)]
    texts = segments + TOKEN_EDGE_CASES + randoms
    for text in texts:
        for n in (1, 2, 3, 5):
            assert features.has_clean_words(text, n) == features.python_has_clean_words(text, n), (repr(text), n)
    for i in range(0, len(texts), 7):
        assert features.split_count(texts[i:i + 7]) == features.python_split_count(texts[i:i + 7])
    assert features.split_count([]) == 0


@compiled_only
def test_token_counts_refuse_what_is_not_str():
    from classifier import _fastcount

    with pytest.raises(TypeError):
        _fastcount.count_tokens(["a", 5])
    with pytest.raises(TypeError):
        _fastcount.count_tokens(("a",))
    with pytest.raises(TypeError):
        _fastcount.has_clean_words(b"a b c", 3)
    with pytest.raises(ValueError):
        _fastcount.has_clean_words("a b c", 0)


@compiled_only
def test_compiled_promo_gate_equals_the_python_gate():
    """Every substring alone, at the start, in the middle and at the very end, in texts of all three
    str widths; the corpus; random texts made of pieces of the substrings."""
    import random

    from classifier import features

    texts = [""]
    for needle in features._PROMO_NEEDLES:
        for wide in ("", "é", "日", "😀"):
            texts += [needle, needle + wide, wide + needle, "x " + needle + " y" + wide, needle[:-1] + wide,
                      needle.upper(), wide + needle[:-1]]
    texts += ["\n".join(s.text for s in features.segments(e.post)).lower()
              for e in load_corpus([ROOT / "training_data"]).examples]
    rng = random.Random(5)
    pieces = [n[i:j] for n in features._PROMO_NEEDLES for i in range(len(n)) for j in range(i + 1, len(n) + 1)]
    pieces += [" ", "\n", ".", "é", "😀", "\x00"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) for _ in range(5000)]
    hits = 0
    for text in texts:
        compiled = features.promo_candidates([text])
        assert compiled == features.python_promo_candidates([text]), repr(text[:80])
        hits += len(compiled)
    assert hits > 2000  # the random texts do pass the gates
    # several segments in one call, as scoring sends them: segment by segment, groups in order
    for e in load_corpus([ROOT / "training_data"]).examples[:500]:
        lows = [s.text.lower() for s in features.segments(e.post)]
        assert features.promo_candidates(lows) == features.python_promo_candidates(lows)
    lows = texts[:3000]
    assert features.promo_candidates(lows) == features.python_promo_candidates(lows)
    assert features.promo_candidates([]) == []


@compiled_only
@pytest.mark.parametrize("needles, groups, error", [
    (("a", ""), (((0,), ()),), ValueError),
    (("a", "é"), (((0,), ()),), ValueError),
    (("a", 5), (((0,), ()),), TypeError),
    (("a",), (((1,), ()),), ValueError),
    (("a",), (((-1,), ()),), ValueError),
    (("a",), ((0,),), TypeError),
    (("a",), ([(0,), ()],), TypeError),
    (("a",), ((("x",), ()),), TypeError),
])
def test_promo_gate_refuses_malformed_needles_and_groups(needles, groups, error):
    from classifier import _fastcount

    with pytest.raises(error):
        _fastcount.promo_candidates(["a text"], needles, groups)


def _str_that_clears(target: list) -> type:
    """A str subclass whose __eq__ (Python code, run by a dict or set look-up) empties `target`."""

    class Sly(str):
        __hash__ = str.__hash__

        def __eq__(self, other):
            target.clear()
            return str.__eq__(self, other)

    return Sly


@compiled_only
def test_a_str_subclass_that_mutates_the_tokens_during_look_up_does_not_crash(tiny_model):
    """A key's __eq__ is Python code: emptying the list it came from must not free it mid-look-up."""
    tokens = []
    Sly = _str_that_clears(tokens)
    term = next(iter(tiny_model.vocabulary_))
    tokens.extend([Sly(term), Sly(term)])
    entries, _ = model_module._fastcount.lookup_entries([], tiny_model.vocabulary_, tiny_model._pair_table(),
                                                        WordCache(), tiny_model._word_entries, tokens)
    assert array("q", entries).tolist() == [tiny_model.vocabulary_[term]]


def _tricky_texts(seed: int, pieces: list[str], n: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 24))) for _ in range(n)]


def _corpus_pieces() -> list[str]:
    """Titles, raw sentences and whole bodies of the corpus, as normalise and the finders meet them."""
    from classifier import text

    out = []
    for e in load_corpus([ROOT / "training_data"]).examples:
        out += [e.post.title, e.post.body]
        out += [e.post.body[s:t] for s, t in text.sentence_spans(e.post.body)]
    return out


@compiled_only
def test_plain_normalise_equals_normalise_step_by_step():
    """For text it calls plain, the compiled pass gives exactly what the Python steps give; for
    anything a step before squeeze_space could change it says None, and normalise goes the Python way."""
    from classifier import _fastcount, text

    edge = ["", " ", "\n", " \n \n\n\n\n x \t\ty  \n", "a  b", "a\tb", "a \nb", "a\n b", "a\n\n\n\nb", "\n\na\n\n",
            "a <b> c", "Q&A", "me@x.org", "a\rb", "a\x00b", "a\x0bb", "a\x1cb", "a\x7fb", "hXxP://x", "w w w",
            "WWW x", "brand dot com", "a.)", "a. )", "a .b", "(.x", "[at]", "x at )", "AT)", "at\t)", "end.",
            "3.5 mm", "e.g. this", "x" * 3000, "caf\u00e9", "a\u00a0b", "\u201cq\u201d"]
    pieces = [" ", "  ", "\t", "\n", "\r", "a", "t", "at", "dot", "w", "W", "x", "h", "p", ".", ")", "(", "]", "[",
              "<", ">", "&", "@", "o", "d", "T", "\x0c", "\u00e9", "\u200b", "com", "\u2019"]
    plain = 0
    for t in edge + _corpus_pieces() + _tricky_texts(11, pieces, 20000):
        fast = _fastcount.plain_normalise(t)
        if fast is not None:
            plain += 1
            assert fast == text.python_normalise(t), repr(t[:80])
        assert text.normalise(t) == text.python_normalise(t), repr(t[:80])
    assert plain > 8000  # it does answer for most plain text
    for t in ("a <b>", "Q&A", "me@x.org", "a\rb", "hxxp", "w w", "www x", "dot", "x (.", "x .)", "[at]", "caf\u00e9"):
        assert _fastcount.plain_normalise(t) is None, t
    with pytest.raises(TypeError):
        _fastcount.plain_normalise(b"bytes")


@compiled_only
def test_may_hold_links_is_false_only_where_the_finders_find_nothing():
    from classifier import _fastcount, text

    pieces = [" ", ".", "com", "org", "io", "tif", "www", "WW", "w", "://", "http", "@", "x", "ab", "-", "_", "/",
              "0", "1", "5", "12", "555", "o", "O", "+", "(", ")", "\u2013", "\u00e9", "\n", "call ", "tel:"]
    texts = _corpus_pieces() + _tricky_texts(12, pieces, 30000)
    texts += ["call 555 0199 now", "555-0O19", "1oooooo", "10oooo5", "x.com", "x.Com.", "a.comb", "a.com-x",
              "a.com.x", "see www.x.y", "http://x", "me@x.org", "12 34 5"]
    found = skipped = 0
    for t in texts:
        links = text.find_emails(t) + text.find_urls(t) + text.find_phones(t)
        found += bool(links)
        if not text.may_hold_links(t):
            skipped += 1
            assert links == [], repr(t[:80])
    assert found > 3000 and skipped > 10000  # both kinds of text do occur
    assert not text.may_hold_links("The nuclei touch in 3 of 12 slices, see fig. 2.")
    with pytest.raises(TypeError):
        _fastcount.may_hold_links("x", {"com"})


@compiled_only
def test_has_run_finds_every_run_of_n_equal_characters_or_sentence_marks():
    from itertools import groupby

    from classifier import _fastcount

    marks = ".!?\u2026\u3002\uff01\uff1f"
    pieces = ["?", "??", "?" * 31, "!", "?!" * 8, ".", "\u2026", "\u3002\uff01\uff1f", "a", "\u00e9", "\u00e9" * 16,
              "\u65e5" * 7, "\U0001f600" * 5, " ", "\n"]
    texts = ["", "?", "?" * 32, "x" + "?" * 31 + "y", "\u65e5" * 32, "?!" * 16, "x" + ".!?" * 10 + "\u2026y"]
    texts += _tricky_texts(13, pieces, 5000)
    runs = mixed = 0
    for t in texts:
        for n in (1, 2, 5, 32):
            equal = any(len(list(g)) >= n for _, g in groupby(t))
            in_marks = any(len(list(g)) >= n for is_mark, g in groupby(t, key=lambda c: c in marks) if is_mark)
            assert _fastcount.has_run(t, n) == (equal or in_marks), (repr(t[:40]), n)
            runs += equal and n == 32
            mixed += in_marks and not equal and n == 32
    assert runs > 500 and mixed > 100
    with pytest.raises(ValueError):
        _fastcount.has_run("aaa", 0)


@compiled_only
def test_word_pairs_are_found_by_id_exactly_where_the_joined_pair_is_a_term(tiny_model):
    """Every bigram term is found through the pair table, and no pair that is not a term: the
    words of the vocabulary's bigrams, recombined, against the dict look-up of "a b"."""
    import itertools
    import random

    model = numpy_twin(tiny_model)
    pairs = model._pair_table()
    bigrams = [t.split(" ") for t in model.vocabulary_ if t.count(" ") == 1 and not t.startswith("c:")]
    assert len(bigrams) > 100
    vocab_words = sorted({w for pair in bigrams for w in pair})
    rng = random.Random(3)
    # scoring's words (features.words) never hold a space or a ":", so never start a "c:" n-gram
    words = [w for pair in bigrams for w in pair] + rng.sample(vocab_words, min(300, len(vocab_words))) + ["zzqx"]
    rng.shuffle(words)
    got, _ = model_module._fastcount.lookup_entries([(words, [])], model.vocabulary_, pairs, model._word_cache,
                                                    model._word_entries)
    expected = array("q")
    for w in words:
        expected.frombytes(model._word_cache[w][8:])
    expected.extend(filter(None, map(model.vocabulary_.get, map(" ".join, itertools.pairwise(words)))))
    assert array("q", got).tolist() == expected.tolist()
    assert sum(map(model.vocabulary_.__contains__, map(" ".join, itertools.pairwise(words)))) > 10


@compiled_only
def test_pair_table_refuses_what_it_cannot_hold(tiny_model):
    from classifier import _fastcount

    with pytest.raises(ValueError):
        _fastcount.pair_table(array("Q", [1]).tobytes(), b"")
    with pytest.raises(ValueError):
        _fastcount.pair_table(array("Q", [1 << 63]).tobytes(), array("q", [1]).tobytes())
    assert len(_fastcount.pair_table(b"", b"")) == 16 * 16  # empty, and never full
    with pytest.raises(ValueError, match="pair_table"):
        _fastcount.lookup_entries([(["a"], [])], tiny_model.vocabulary_, b"x" * 48, WordCache(),
                                  tiny_model._word_entries)


@compiled_only
def test_word_cache_behaves_as_a_dict_of_str_to_bytes():
    """Many words (it grows several times), equal str objects that are not the same object,
    all three str widths; bad keys and values are refused."""
    import random

    cache, reference = WordCache(), {}
    rng = random.Random(4)
    alphabet = "abcdefghij\u00e9\u65e5\U0001f600"
    for i in range(20000):
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        value = i.to_bytes(8, "little")
        if rng.random() < 0.3 and reference:
            word = "".join(list(rng.choice(list(reference))))  # an equal str, another object
        cache[word] = reference[word] = value
    assert len(cache) == len(reference)
    for word, value in reference.items():
        assert cache.get(word) == value and cache["".join(list(word))] == value
    assert cache.get("absent") is None and cache.get("absent", b"x") == b"x"
    with pytest.raises(KeyError):
        cache["absent"]
    for key, value, error in ((b"w", b"", TypeError), (1, b"", TypeError), ("w", "s", TypeError)):
        with pytest.raises(error):
            cache[key] = value
    with pytest.raises(TypeError):
        del cache["a"]


@compiled_only
def test_plain_words_are_the_words_of_text_without_links(monkeypatch):
    """plain_words gives features.words where the link and contact finders have nothing to do,
    None elsewhere; segments_parts is the same with it and without it."""
    from classifier import features, text

    pieces = [" ", "Ab", "CD", "x", "Don't", "'", "0", "42", "o", "O", ".", ".com", "www", "@", "://", "_", "-",
              "\u00e9", "\n", "A1b2"]
    segments = [s.text for e in load_corpus([ROOT / "training_data"]).examples for s in features.segments(e.post)]
    texts = segments + _tricky_texts(14, pieces, 20000)
    plain = features.plain_words(texts)
    for t, got in zip(texts, plain):
        if t.isascii() and not text.may_hold_links(t):
            assert got == features.words(t), repr(t[:80])
        else:
            assert got is None, repr(t[:80])
    assert sum(p is not None for p in plain) > 10000
    posts = [[s.text for s in features.segments(e.post)] for e in load_corpus([ROOT / "training_data"]).examples]
    fused = [features.segments_parts(p) for p in posts]
    monkeypatch.setattr(features, "_compiled_plain_words", None)
    assert fused == [features.segments_parts(p) for p in posts]
    with pytest.raises(TypeError):
        features._fastcount.plain_words(["a", 1], text.URL_TLDS)


@compiled_only
def test_a_domain_name_whose_comparison_empties_the_texts_does_not_crash():
    """Looking a domain up in `tlds` can run a str subclass's __eq__; if that empties the list of
    texts, plain_words must still read texts that are alive and answer for the list it was given."""
    from classifier import features

    texts = []
    Sly = _str_that_clears(texts)
    # Built at run time, so the list holds the only reference to each text.
    texts.extend("".join(parts) for parts in (["see ", "site", ".com", " now"], ["two ", "plain ", "words"]))
    got = features._fastcount.plain_words(texts, frozenset([Sly("com")]))
    assert texts == []
    assert got == [None, ["two", "plain", "words"]]


@compiled_only
def test_reason_terms_refuses_a_sentence_term_missing_from_the_whole_post(tiny_model):
    _, counts, _ = tiny_model._score_parts(POSTS[0])
    idx = array("q", counts.idx)
    assert len(idx) > counts.n_whole  # the post has sentence terms
    idx[0] = max(idx) + 1  # in no whole-post row
    with pytest.raises(ValueError, match="missing from the whole post"):
        model_module._fastcount.reason_terms(counts.rows, idx.tobytes(), counts.x, counts.w, counts.n_whole,
                                             counts.n_rows - 1, -1, (1.0,) * 6, 10, tiny_model._term_names(), [])


# What the sentence rules look at: abbreviations (also spelt with the letters that (?i:) matches
# outside ASCII), list markers, code lines, glued words, closing quotes, Unicode punctuation,
# letters, digits and spaces, and inline code.
_SENTENCE_PIECES = [
    " ", "  ", "\t", "\n", "\n\n", "\r\n", " \n", ".", "..", "...", "!", "?", "!?", ":", ": \n", ")", "]", "'", '"', "*",
    "_", "a", "A", "The", "the", "of", "Of", "fig", "Fig", "figs", "approx", "xapprox", "no", "No", "sept", "1", "12",
    "123", "1234", "H2O", "e", "U", "S", "word", "Word", "words", "Hello", "x.Com", "img.Tif", "www.", "/", "@", "=",
    "-", "- ", "* ", "+ ", "1. ", "12) ", "> ", "# ", "####### ", "| ", "    ", "import numpy as np", "from x.has y",
    "def f(", "for (", "x = 1", "f(x);", "{", "//", "$ ", ">>>", ",", ";", "(", "\x0b", "\x0c", "\x1c", "_x", "2of",
    "between", "B", "Ab", "in", "at", "mr", "st", "3", "a.b", "z!Y", "ok!Yes", "why?No", "\u00e9", "caf\u00e9",
    "\u2026", "\u3002", "\uff01", "\uff1f", "\u2019", "\u201d", "\u00bb", "\u2022 ", "\u25e6 ", "\u2013", "\u2014",
    "\u0130", "\u0131", "\u017f", "\u212a", "F\u0131g", "\u017ft", "\u00b2", "\u0663", "\u00a0", "\u2028", "\x85",
    "\U0001f600", "\ud800x", "``", "`x`", "` ", "`a.\nB`", "`e.g. X`",
]


def _compiled_spans(t: str):
    from classifier import text

    code = [m.span() for m in text._SS_INLINE_CODE.finditer(t)]
    return text._compiled_plain_sentence_spans(t, code, text._SPLIT_WORDS, text._CODE_LINE_AT.match,
                                               text._GLUE_SAFE_WORDS, text._MAX_SPAN)


@compiled_only
def test_compiled_sentence_spans_equal_the_regex_spans():
    """Wherever the one-pass splitter answers, it finds exactly the regex's sentences; it leaves
    HTML, entities, fences and sentences too long to keep whole to the Python path."""
    from classifier import text

    edge = ["", " ", "\n", ". x", "a.", "Fig. 2 shows it. See no. 4. No. It ends.", "e.g. this and U.S. that.",
            "The end of\nThe line", "one,\nTwo", "a list:\n- one\n- two", "1. first\n2. second", "x.Com is here",
            "it broke.Then it worked", "see a/b.Then", "Wow!Nice", "\u212aelvin.", "F\u0131g. 3", "\u00e9t\u00e9. Oui",
            "a `b. C` d. E", "x" * 1500, "Hi.\n" + "z " * 700]
    texts = edge + _corpus_pieces() + _tricky_texts(15, _SENTENCE_PIECES, 30000)
    answered = 0
    for t in texts:
        fast = _compiled_spans(t)
        if fast is not None:
            answered += 1
            assert fast == text.python_sentence_spans(t), repr(t[:80])
        assert text.sentence_spans(t) == text.python_sentence_spans(t), repr(t[:80])
    assert answered > 25000  # it does answer for most text
    for t in ("a <b>c</b>. D", "Q&A. Next", "```\ncode.\n```", "~~~\nx. Y\n~~~", "word " * 300 + "."):
        assert _compiled_spans(t) is None, t[:40]


@compiled_only
def test_compiled_sentence_spans_refuse_bad_arguments_and_pass_errors_on():
    from classifier import text

    args = (text._SPLIT_WORDS, text._CODE_LINE_AT.match, text._GLUE_SAFE_WORDS, text._MAX_SPAN)
    split = text._compiled_plain_sentence_spans
    for code in ([(3, 1)], [(0, 2), (1, 3)], [(0, 99)], [(0,)], ["ab"], [(0.5, 1)]):
        with pytest.raises(ValueError, match="code_spans"):
            split("a. B `c`", code, *args)
    with pytest.raises(TypeError):
        split(b"a. B", [], *args)
    with pytest.raises(ValueError):
        split("a. B", [], *args[:3], 0)

    with pytest.raises(ValueError, match="code_spans"):  # checked before the text is looked at
        split("a <b>c</b>", [(5, 2)], *args)
    with pytest.raises(ValueError, match="code_spans"):
        split("a. B `c`", [(2**70, 2**71)], *args)

    def broken(t, pos):
        raise RuntimeError("code line check failed")

    with pytest.raises(RuntimeError, match="code line check failed"):  # only a single newline asks
        split("one\ntwo", [], args[0], broken, *args[2:])

    class Raising(str):
        __hash__ = str.__hash__

        def __eq__(self, other):
            raise RuntimeError("word comparison failed")

    with pytest.raises(RuntimeError, match="word comparison failed"):
        split("See fig. 2 here.", [], (frozenset([Raising("fig")]),) + args[0][1:], *args[1:])


@compiled_only
def test_compiled_sentence_spans_leave_str_subclasses_to_python():
    """A str subclass may override what the Python path calls (isspace, rfind): it goes that way."""
    from classifier import text

    class Text(str):
        pass

    assert _compiled_spans(Text("One. Two.")) is None
    assert text.sentence_spans(Text("One. Two.")) == [(0, 4), (5, 9)]


def test_the_sentence_word_lists_have_the_lengths_the_compiled_splitter_reads():
    """The regex groups abbreviations by length (look-behinds have a fixed width), and the
    compiled splitter reads the same lengths: a 6-letter word after five letters or more, 2 to 4
    letters otherwise, run-on words of up to 8. A word of another length needs both changed."""
    from classifier import text

    always, before_num, runon = text._SPLIT_WORDS
    assert {len(w) for w in always} <= {2, 3, 4, 6}
    assert {len(w) for w in before_num} <= {2, 3, 4}
    assert max(map(len, runon)) <= 8
    for words in text._SPLIT_WORDS:
        assert all(w.isascii() and w.isalpha() and w.islower() for w in words)
