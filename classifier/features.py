"""Turn a post into segments (title and sentences) and each segment into feature tokens.

The same tokens feed training (through scikit-learn's CountVectorizer with `tokens_identity`) and
the fast scoring path in `model.py`, so the two cannot drift apart. Token families:

- words, lower-cased, digits folded to ``0`` so that numbers and versions do not matter;
- word bigrams inside one sentence;
- character 3-4-grams of each word (``c:...``), which catch spelling tricks, brand names glued to
  words and languages the corpus barely covers;
- link and contact tokens: ``link:<domain>``, ``linkword:<part of domain>``, ``lc:<4-5 characters
  of a domain part>``, ``tld:<tld>``,
  ``path:<word in the URL path>``, ``email``, ``phone``;
- promotional phrasing (``promo:<pattern>``), a short list of phrasings that spam uses and forum
  answers rarely do;
- post-level tokens: ``links:<count bucket>``, ``link_at_end``, ``words:<length bucket>``.
"""
from __future__ import annotations

import re
from itertools import chain
from operator import methodcaller
from typing import NamedTuple

from . import text as _text
from .compiled import fastcount as _fastcount
from .types import Post

# Compiled twins of `regex_words`, `split_count`, `has_clean_words` and `promo_candidates`, the
# gate `has_run` and `plain_words` (classifier/_fastcount.c); None where the compiled step is not
# built.
_compiled_words = _fastcount.words if _fastcount else None
_compiled_split_count = _fastcount.count_tokens if _fastcount else None
_compiled_has_clean_words = _fastcount.has_clean_words if _fastcount else None
_compiled_promo_candidates = _fastcount.promo_candidates if _fastcount else None
_compiled_has_run = _fastcount.has_run if _fastcount else None
_compiled_plain_words = _fastcount.plain_words if _fastcount else None

#: Bump when tokenisation changes: models saved with another value are refused.
FEATURES_VERSION = "3"

#: Text beyond this many characters per field is not scored (documented prefix).
MAX_FIELD_CHARS = 20_000
#: Most segments (title + sentences) a post is split into; later sentences join the last one.
MAX_SEGMENTS = 200

# Character 3-4-grams. Measured against 3-5 on the same corpus and third-party data: held-out
# spam ROC-AUC 0.967 vs 0.963, honest FOSSEE posts blocked 0.2 % vs 0.5 %, training 68 s vs 96 s,
# and fewer vocabulary look-ups per word when scoring.
CHAR_NGRAMS = (3, 4)

_WORD = re.compile(r"[^\W_]+(?:['][^\W_]+)*")
_DIGITS = re.compile(r"\d+")
_PATH_WORD = re.compile(r"[a-z]{3,}")

# Phrasings that promote: each pattern is named, and the name becomes a token, so a reason reads
# "promo:visit_site" rather than a regex. Each has trigger substrings: the regex only runs when
# one occurs in the lower-cased segment, which cut the cost of this step from 22 to ~6 us a
# segment (patterns are matched on lower-cased text, without re.IGNORECASE, for the same reason).
PROMO_PATTERNS = {
    "visit_site": (("visit", "check out", "go to", "head over", "browse"),
                   r"\b(?:visit|check out|go to|head over to|browse)\b[^.!?\n]{0,60}\b(?:website|web site|site|page|store|shop|portal|blog)\b"),
    "official_site": (("official",), r"\bofficial (?:website|site|page|store|app)\b"),
    "get_more": (("more", "latest", "further"),
                 r"\b(?:to|for) (?:get |read |find |see )?(?:more|the latest|latest|further|all the latest)\b[^.!?\n]{0,40}\b(?:news|updates|tips|info|information|details|offers|deals|stories|articles)\b"),
    "click_here": (("click",), r"\bclick (?:here|the link|below|on the link)\b"),
    "call_now": (("call", "dial", "contact", "reach", "whatsapp", "text"),
                 r"\b(?:call|dial|contact|reach|whatsapp|text)\b[^.!?\n]{0,25}\b(?:now|today|24/7|24x7|toll[- ]?free|helpline|hotline|support number|customer (?:care|service))\b"),
    "best_deal": (("best", "cheap", "afford", "lowest", "discount"),
                  r"\b(?:best|cheap|cheapest|affordable|lowest|discount|discounted)\b[^.!?\n]{0,20}\b(?:price|prices|deal|deals|rates|offer|offers|service|services)\b"),
    "buy_now": (("buy", "order", "shop", "book", "sign up", "register", "subscribe", "download"),
                r"\b(?:buy|order|shop|book|sign up|register|subscribe|download)\b[^.!?\n]{0,15}\b(?:now|today|online|here)\b"),
    "free_offer": (("free", "prescription", "limited", "100%"),
                   r"\b(?:free (?:trial|download|bonus|spins|shipping|consultation|quote)|no prescription|without prescription|limited (?:time )?offer|100% (?:free|guaranteed|legit))\b"),
    "money": (("earn", "make", "win", "won"),
              r"\b(?:earn|make|win|won)\b[^.!?\n]{0,20}(?:\$|usd|dollars|money|cash|bitcoin|btc|jackpot)"),
    "follow_me": (("subscribe", "follow", "my "),
                  r"\b(?:subscribe to|follow) (?:my|our|us)\b|\bmy (?:channel|page|profile|video|playlist)\b"),
    "messenger": (("whatsapp", "telegram", "wechat", "viber", "skype"), r"\b(?:whatsapp|telegram|wechat|viber|skype)\b"),
    "we_offer": (("we", "our"),
                 r"\b(?:we|our (?:team|company|agency|experts))\b[^.!?\n]{0,20}\b(?:offer|provide|deliver|guarantee|specialize|specialise)\b"),
}
# A second necessary condition for the patterns whose first triggers are common words ("we",
# "more", "make", "text"): one of these substrings must occur too, or the pattern cannot match
# (each alternative of the pattern's closing group contains one). On honest posts most patterns
# then run no regex at all.
PROMO_ALSO = {
    "visit_site": ("site", "page", "store", "shop", "portal", "blog"),
    "get_more": ("news", "updates", "tips", "info", "details", "offers", "deals", "stories", "articles"),
    "call_now": ("now", "today", "24/7", "24x7", "toll", "helpline", "hotline", "support number", "customer"),
    "best_deal": ("price", "deal", "rates", "offer", "service"),
    "buy_now": ("now", "today", "online", "here"),
    "money": ("$", "usd", "dollars", "money", "cash", "bitcoin", "btc", "jackpot"),
    "we_offer": ("offer", "provide", "deliver", "guarantee", "specialize", "specialise"),
}
_PROMO = [(name, triggers, PROMO_ALSO.get(name, ()), re.compile(pattern))
          for name, (triggers, pattern) in PROMO_PATTERNS.items()]
# The same gates as indices into one tuple of distinct substrings, for the compiled check.
_PROMO_NEEDLES = tuple(sorted({needle for _, triggers, also, _ in _PROMO for needle in (*triggers, *also)}))
_PROMO_GROUPS = tuple((tuple(map(_PROMO_NEEDLES.index, triggers)), tuple(map(_PROMO_NEEDLES.index, also)))
                      for _, triggers, also, _ in _PROMO)


class Segment(NamedTuple):
    """One scored unit: the title, or one sentence of the body, with its raw offsets.

    A named tuple, like `types.Highlight`: every post makes several, and a frozen dataclass
    costs about three times as much to construct.
    """

    field: str
    start: int
    end: int
    text: str  # normalised text


def tokens_identity(tokens):
    """Analyzer for CountVectorizer: the documents are already token lists."""
    return tokens


def fold_digits(word: str) -> str:
    """Map every digit run to '0', so changing a number does not change the token."""
    return _DIGITS.sub("0", word)


def char_ngrams(word: str, low: int = CHAR_NGRAMS[0], high: int = CHAR_NGRAMS[1]) -> list[str]:
    """Character n-grams of one word padded with spaces, as scikit-learn's char_wb does."""
    padded = f" {word} "
    grams = []
    for n in range(low, high + 1):
        if n > len(padded):
            break
        grams.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


def word_terms(word: str) -> list[str]:
    """The word itself and its character n-grams (cached per word on the fast path)."""
    return [word, *char_ngrams(word)]


def split_specials(text: str) -> tuple[str, list[str]]:
    """Pull URLs, e-mail addresses and phone numbers out of the text as tokens.

    Returns the text with those spans blanked (so their pieces do not become words) and the
    link and contact tokens found.
    """
    if not _text.may_hold_links(text):  # most sentences: three finders skipped
        return text, []
    tokens: list[str] = []
    rest = text
    for email in _text.find_emails(text):
        tokens.append("email")
        domain = email.rsplit("@", 1)[-1].lower()
        tokens.append("link:" + domain)
        rest = rest.replace(email, " ")
    for url in _text.find_urls(rest):
        tokens.extend(url_tokens(url))
        rest = rest.replace(url, " ")
    phones = _text.find_phones(rest)
    if phones:
        tokens.extend("phone" for _ in phones)
        rest = _PHONEISH.sub(" ", rest)
    return rest, tokens


_PHONEISH = re.compile(r"\+?[\d(][\d\s().oO-]{6,}\d")


def url_tokens(url: str) -> list[str]:
    """Tokens for one URL: its domain, the words of the domain, its TLD and path words.

    There is deliberately no generic "url" token: with one, the first model learned "any link
    to an unfamiliar site is spam" and blocked 2.4 % of honest Stack Exchange questions (links
    to screenshots and papers). The TLD token still marks every link, and the post-level
    `links:` bucket counts them.
    """
    domain = _text.url_domain(url)
    labels = domain.split(".")
    tokens = ["link:" + domain, "tld:" + (labels[-1] if len(labels) > 1 else "none")]
    for label in labels[:-1]:
        for part in label.split("-"):
            if len(part) > 1 and part not in ("co", "www"):
                part = fold_digits(part)
                tokens.append("linkword:" + part)
                # Spam domains glue words together ("bestessayhelpnow"): their 4- and 5-grams
                # ("essa", "ssay", "help") carry over to domains the corpus never saw.
                tokens.extend("lc:" + part[i:i + n] for n in (4, 5) for i in range(len(part) - n + 1))
    lowered = url.lower()
    slash = lowered.find("/", lowered.find("//") + 2 if "//" in lowered else 0)
    if slash != -1:
        tokens.extend("path:" + w for w in _PATH_WORD.findall(lowered[slash:]))
    return tokens


def promo_tokens(text: str) -> list[str]:
    """One token per promotional phrasing found in the segment."""
    return promo_tokens_per_segment([text])[0]


def promo_tokens_per_segment(texts: list[str]) -> list[list[str]]:
    """Promotional-phrasing tokens of several segments, each pattern searched only in the
    segments that hold its trigger substrings.

    No pattern crosses a line break, so a match lies inside one segment and the gate (a trigger
    and, where the pattern has some, an also substring) holds for that segment: searching only
    the gated segments, not the whole post, cut this step from 16 to 7 us a post on the corpus.
    """
    out: list[list[str]] = [[] for _ in texts]
    lows = list(map(str.lower, texts))
    for seg, i in promo_candidates(lows):
        name, _, _, pattern = _PROMO[i]
        if pattern.search(lows[seg]):
            out[seg].append("promo:" + name)
    return out


def promo_candidates(lows: list[str]) -> list[tuple[int, int]]:
    """(segment, index into `_PROMO`) of every pattern whose trigger substrings (and one of its
    PROMO_ALSO substrings, where it has some) occur in the lower-cased segment: only these can
    match there. Compiled where built: one pass over each segment finds every substring, instead
    of one scan per substring."""
    if _compiled_promo_candidates is not None:
        return _compiled_promo_candidates(lows, _PROMO_NEEDLES, _PROMO_GROUPS)
    return python_promo_candidates(lows)


def python_promo_candidates(lows: list[str]) -> list[tuple[int, int]]:
    """`promo_candidates` by its definition (the fallback, and what tests compare with)."""
    out = []
    for seg, low in enumerate(lows):
        for i, (_, triggers, also, _) in enumerate(_PROMO):
            # map() over a C method, not a generator expression: a third of the cost
            if any(map(low.__contains__, triggers)) and (not also or any(map(low.__contains__, also))):
                out.append((seg, i))
    return out


def words(text: str) -> list[str]:
    """Lower-cased words with digits folded (compiled where built: 3.5x faster, same words)."""
    if _compiled_words is not None:
        return _compiled_words(text.lower())
    return regex_words(text)


def regex_words(text: str) -> list[str]:
    """`words` by its definition: two regex passes (the fallback, and what tests compare with)."""
    return _WORD.findall(fold_digits(text.lower()))


def segments_parts(texts: list[str]) -> list[tuple[list[str], list[str]]]:
    """Words of each normalised segment of one post, and its link, contact and promotional
    tokens (promotional phrasing found in one pass over the post)."""
    out = []
    for text, plain, promo in zip(texts, plain_words(texts), promo_tokens_per_segment(texts)):
        if plain is None:
            rest, tokens = split_specials(text)
            tokens.extend(promo)
            out.append((words(rest), tokens))
        else:
            out.append((plain, promo))
    return out


def plain_words(texts: list[str]) -> list[list[str] | None]:
    """For each text, `words(text)` where it is plain ASCII that certainly holds no link or contact
    (`text.may_hold_links`), else None: then `split_specials` and `words` must run. Compiled
    where built (one call for a post's sentences); without it, all None."""
    if _compiled_plain_words is not None:
        return _compiled_plain_words(texts, _text.URL_TLDS)
    return [None] * len(texts)


def expand_words(ws: list[str]) -> list[str]:
    """Word terms (word + character n-grams) of every word, then the bigrams."""
    out: list[str] = []
    for w in ws:
        out.extend(word_terms(w))
    out.extend(f"{a} {b}" for a, b in zip(ws, ws[1:]))
    return out


def segments(post: Post) -> list[Segment]:
    """Split a post into its title and body sentences, each normalised.

    Offsets index the post's own `title` and `body` strings, cut to MAX_FIELD_CHARS.
    """
    out = []
    title = post.title[:MAX_FIELD_CHARS]
    if title.strip():
        start = len(title) - len(title.lstrip())
        out.append(Segment("title", start, len(title.rstrip()), _text.normalise(title)))
    body = post.body[:MAX_FIELD_CHARS]
    # Long runs of one punctuation character ("?????...") or of sentence marks in any mix
    # ("?!?!...") make sentence splitting quadratic; split on a copy where they are spaces of the
    # same length, so offsets still match.
    split_on = _PUNCT_RUN.sub(_blank, body) if has_run(body, _PUNCT_RUN_MIN) else body
    for start, end in _text.sentence_spans(split_on):
        normalised = _text.normalise(body[start:end])
        if not normalised:
            continue
        previous = out[-1] if out and out[-1].field == "body" else None
        if previous is not None and (_is_fragment(normalised) or len(out) >= MAX_SEGMENTS):
            # A bare link line or a two-word sign-off belongs to the sentence before it
            # ("see the guide:\nhttps://..."). Scored alone, a lone link line looked like a link
            # drop and an honest answer with a screenshot link was blocked. Past MAX_SEGMENTS
            # everything joins the last segment, so a hostile post cannot make thousands.
            out[-1] = Segment("body", previous.start, end, previous.text + "\n" + normalised)
        else:
            out.append(Segment("body", start, end, normalised))
    return out


_PUNCT_RUN_MIN = 32
_PUNCT_RUN = re.compile(rf"([^\w\s])\1{{{_PUNCT_RUN_MIN - 1},}}|[.!?\u2026\u3002\uff01\uff1f]{{{_PUNCT_RUN_MIN},}}")


def _blank(m: re.Match) -> str:
    return " " * len(m.group())


def has_run(text: str, n: int) -> bool:
    """False when no character occurs n or more times in a row in `text`, nor n sentence marks
    (.!?… and the CJK ones) in any mix, so the regex for such runs need not scan it (compiled
    where built: one pass, against 5 us a post for the regex; without it, always True and the
    regex decides)."""
    if _compiled_has_run is not None:
        return _compiled_has_run(text, n)
    return True


def has_clean_words(text: str, n: int) -> bool:
    """True when at least n of `text.split()`'s tokens hold no "." or ":" and a word character
    (compiled where built: the same answer without making the tokens)."""
    if _compiled_has_clean_words is not None:
        return _compiled_has_clean_words(text, n)
    return python_has_clean_words(text, n)


def python_has_clean_words(text: str, n: int) -> bool:
    """`has_clean_words` by its definition (the fallback, and what tests compare with)."""
    clean = 0
    for token in text.split():
        if "." not in token and ":" not in token and _WORD.search(token):
            clean += 1
            if clean >= n:
                return True
    return False


def split_count(texts: list[str]) -> int:
    """`len(t.split())` summed over texts (compiled where built: without making the tokens)."""
    if _compiled_split_count is not None:
        return _compiled_split_count(texts)
    return python_split_count(texts)


def python_split_count(texts: list[str]) -> int:
    """`split_count` by its definition (the fallback, and what tests compare with)."""
    return sum(map(len, map(str.split, texts)))


def _is_fragment(normalised: str) -> bool:
    """True for a segment with fewer than three words outside its links."""
    # Fast answer for ordinary sentences: a link is one whitespace-free token with a "." or ":",
    # so three tokens without either that hold a word are three words outside any link. This
    # skipped the URL search for most sentences (61 -> 12 us a post).
    if has_clean_words(normalised, 3):
        return False
    rest = normalised
    for url in _text.find_urls(normalised):
        rest = rest.replace(url, " ")
    return len(_WORD.findall(rest)) < 3


def post_level_tokens(post_segments: list[Segment], extras: list[list[str]]) -> list[str]:
    """Tokens that describe the whole post: link count, a link at the end, phones, length.

    `extras` holds, per segment, the link/contact/promo tokens from `segments_parts`.
    """
    # map() over C methods instead of generator expressions: this runs for every post scored
    all_extras = list(chain.from_iterable(extras))
    n_links = sum(map(_is_tld, all_extras))
    n_words = split_count([seg.text for seg in post_segments])
    tokens = ["links:" + _bucket(n_links, (0, 1, 2, 4)), "words:" + _bucket(n_words, (3, 10, 30, 100, 300))]
    # the title comes first, so the last body segment is the last segment when that is a body one
    if post_segments and post_segments[-1].field == "body" and any(map(_is_tld, extras[-1])):
        tokens.append("link_at_end")
    if "phone" in all_extras:
        tokens.append("has_phone")
    return tokens


_is_tld = methodcaller("startswith", "tld:")


def _bucket(value: int, edges: tuple[int, ...]) -> str:
    """Name the bucket of `value`: '<=e' for the first edge it fits under, else '>last'."""
    for edge in edges:
        if value <= edge:
            return f"<={edge}"
    return f">{edges[-1]}"


def post_tokens(post: Post) -> tuple[list[Segment], list[list[str]], list[str]]:
    """Segments of a post, the tokens of each, and the tokens of the whole post (reference path).

    The whole post's tokens are every segment's tokens plus the post-level tokens, so the post
    vector is exactly the sum of its sentence vectors and a few post-level counts.
    """
    segs = segments(post)
    return (segs, *tokens_from_parts(segs, segments_parts([s.text for s in segs])))


def tokens_from_parts(segs: list[Segment], parts) -> tuple[list[list[str]], list[str]]:
    """Token list of each segment and of the whole post, from `segments_parts` output."""
    lists = [expand_words(ws) + extra for ws, extra in parts]
    whole = [tok for toks in lists for tok in toks]
    whole.extend(post_level_tokens(segs, [extra for _, extra in parts]))
    return lists, whole
