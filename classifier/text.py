"""Text clean-up and feature extraction for forum posts (spam / off-topic scoring).

Everything here is a small pure function on ``str`` built from precompiled,
module-level regular expressions; the only module state is constants.  The
functions sit on the scoring hot path, so each one has a cheap early exit for
the common case (plain ASCII prose, no HTML, no obfuscation) and avoids
per-character Python loops.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from .compiled import fastcount as _fastcount

# Compiled answers for plain ASCII text (classifier/_fastcount.c); other text goes the Python way.
_compiled_may_hold_links = _fastcount.may_hold_links if _fastcount else None
_compiled_plain_normalise = _fastcount.plain_normalise if _fastcount else None
_compiled_plain_sentence_spans = _fastcount.plain_sentence_spans if _fastcount else None

__all__ = [
    "strip_html",
    "nfkc",
    "remove_invisible",
    "straighten_quotes",
    "deobfuscate",
    "squeeze_space",
    "normalise",
    "find_urls",
    "url_domain",
    "find_emails",
    "find_phones",
    "may_hold_links",
    "sentence_spans",
]


def _alternation(words) -> str:
    """A regex that matches any of `words`, longer ones first where one is a prefix of another
    (so 'co' never pre-empts 'com'), as a trie: `c(?:om?|h|...)`.

    The flat alternation `com|net|...|co` tried every word at every position; as a trie, the
    engine follows only the letters it reads. It tries the same words in the same order where
    they match (tests compare the two), and the spaced-dot chains of hostile posts, which try it
    at every label, take half the time.
    """
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here

    def render(node: dict) -> str:
        branches = [re.escape(ch) + render(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        alternation = f"(?:{'|'.join(branches)})" if len(branches) > 1 or "" in node else branches[0]
        return alternation + "?" if "" in node else alternation  # greedy: the longer word first

    return render(trie)


# --------------------------------------------------------------------------------------
# Top-level domains
# --------------------------------------------------------------------------------------

# TLDs recognised in bare domains ("brightessays.com").  Deliberately excludes TLDs that
# collide with common file extensions (py, sh, pl, md, rs, so, cc, ps, ml, zip, mov ...)
# and English words that are also common attribute names in code (host, page, link ...).
URL_TLDS = frozenset(
    """
    com net org edu gov io co info biz me tv us uk ca au nz ie de fr es nl be ch se dk fi
    pl cz ru ua in cn jp kr br mx ar cl za ng ke pk ph sg vn tr eu asia ly gl gd ai
    xyz top online site shop store club app dev pro live life world today news blog
    tech website bid loan vip icu fun buzz best academy agency services solutions
    digital guru
    """.split()
)

# TLDs that are also ordinary English words: after a spelled-out "dot" they are only
# trusted at the end of a phrase ("brand dot in." yes, "a red dot in the image" no).
_WORDY_TLDS = frozenset(
    """
    in me us co be top shop store site online club app pro live life world today news
    blog tech fun best bid loan guru academy agency services solutions digital
    """.split()
)

# TLDs that, written with a capital ("Example.Com"), are not plausible sentence starts;
# used so the glued-sentence rule ("March.To get") does not cut domains apart.
_GLUE_SAFE_WORDS = frozenset(
    (URL_TLDS - _WORDY_TLDS)
    | set(
        """
        tif tiff png jpg jpeg gif bmp svg webp pdf txt csv tsv json xml yml yaml zip gz tar
        py ijm java js ts czi lif nd2 ome zarr h5 hdf5 npy npz mat lsm oib oir vsi ims mrc
        html htm php aspx md doc docx xls xlsx ppt pptx mp4 avi mov exe dll so sh
        """.split()
    )
)

_TLD_ALT = _alternation(URL_TLDS)
_NONSPACE_RUN = re.compile(r"\S*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"

# --------------------------------------------------------------------------------------
# strip_html
# --------------------------------------------------------------------------------------

_HTML_HINT = re.compile(
    r"<[A-Za-z/!]|&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"
)
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")

# Starts with the literal "<" so the engine jumps from one "<" to the next; read it through
# html_matches, which keeps unclosed tags linear.
_HTML_TOKEN = re.compile(
    r"""
    <(?:
        (?P<comment>!--.*?(?:-->|\Z))
      | (?P<raw>(?P<rawname>script|style)\b[^>]*>.*?(?:</(?P=rawname)\s*>|\Z))
      | (?P<decl>!(?:doctype\b|\[CDATA\[)[^>]*>)
      | (?P<anchor>a\b(?P<aattrs>[^<>]*)>(?P<atext>[^<]*(?:<(?!/?a\b)[^<]*)*)</a\s*>)
      | (?P<tag>/?(?P<name>[A-Za-z][A-Za-z0-9]*(?::[A-Za-z][A-Za-z0-9]*)?)
          (?P<attrs>(?:\s+[^\s"'<>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]+))?)*)
          \s*/?>)
    )
    """,
    re.I | re.S | re.X,
)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_LINK_KEY_PREFIX = re.compile(r"^(?:[a-z][a-z0-9+.-]*:(?://)?)?(?:www\d{0,3}\.)?")

_KNOWN_TAGS = frozenset(
    """
    a abbr acronym address area article aside audio b base bdi bdo big blink blockquote body
    br button canvas caption center cite code col colgroup data datalist dd del details dfn
    dialog dir div dl dt em embed fieldset figcaption figure font footer form frame frameset
    h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend li
    link main map mark marquee menu meta meter nav nobr noscript object ol optgroup option
    output p param picture pre progress q rp rt ruby s samp script section select small
    source span strike strong style sub summary sup svg table tbody td template textarea
    tfoot th thead time title tr track tt u ul var video wbr
    """.split()
)
_BLOCK_TAGS = frozenset(
    """
    address article aside blockquote body br center dd details dialog dir div dl dt fieldset
    figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hgroup hr html li main menu
    nav ol p pre section summary table tbody tfoot thead title tr ul
    """.split()
)
_CELL_TAGS = frozenset(("td", "th"))


def _attr_value(regex: re.Pattern, attrs: str) -> str | None:
    """Pull one attribute value out of a tag, whichever quoting style was used."""
    m = regex.search(attrs)
    if m is None:
        return None
    return next(g for g in m.groups() if g is not None)


def _link_key(s: str) -> str:
    """Reduce a link or its text to a comparable form so 'foo.com' matches 'https://www.foo.com/'."""
    s = html.unescape(s).strip().lower()
    return _LINK_KEY_PREFIX.sub("", s, count=1).rstrip("/")


def _render_anchor(m: re.Match) -> str:
    """Render <a href=URL>TEXT</a> as 'TEXT (URL)' so link targets survive as plain text."""
    href = _attr_value(_HREF, m.group("aattrs"))
    inner = _sub_html_tokens(m.group("atext"))
    text = " ".join(inner.split())
    href = href.strip() if href else ""
    if not href or href.startswith("#") or href.lower().startswith("javascript:"):
        return text
    if not text or _link_key(text) == _link_key(href):
        return href
    return f"{text} ({href})"


def html_matches(pattern: re.Pattern, text: str, pos: int, endpos: int) -> Iterator[re.Match]:
    """What `pattern.finditer(text, pos, endpos)` gives for the HTML patterns (`_HTML_TOKEN`,
    `_SS_HTML`), in linear time, for bounds 0 <= pos, endpos (as every caller passes).

    Every branch of those patterns but the comment needs a ">" after its "<", so the regex alone,
    at every "<" past the last ">", read to the end before failing: quadratic on an unclosed
    "<script<script..." or "<pre<pre...". Here it runs only up to the last ">"; up to there its
    matches are the same, except that a comment or block reaching that cut stops there instead of
    running on to the end, so a match ending at the cut is taken again over the whole range. Past
    the cut only a comment can match, and it runs to the end.
    """
    cut = max(text.rfind(">", pos, endpos) + 1, pos)
    end = pos
    for m in pattern.finditer(text, pos, cut):
        if m.end() == cut:
            m = pattern.match(text, m.start(), endpos)
        end = m.end()
        yield m
    if end < endpos:
        start = text.find("<!--", max(end, cut), endpos)
        if start >= 0:
            yield pattern.match(text, start, endpos)


def _sub_html_tokens(text: str) -> str:
    """`_HTML_TOKEN.sub(_render_html_token, text)`, in linear time (see `html_matches`)."""
    out, end = [], 0
    for m in html_matches(_HTML_TOKEN, text, 0, len(text)):
        out.append(text[end : m.start()])
        out.append(_render_html_token(m))
        end = m.end()
    out.append(text[end:])
    return "".join(out)


def _render_html_token(m: re.Match) -> str:
    """Replace one HTML token by its plain-text equivalent; unknown '<words>' stay as text."""
    if m.group("anchor") is not None:
        return _render_anchor(m)
    if m.group("tag") is None:  # comment, script/style block, doctype
        return ""
    name = m.group("name").lower()
    if name in _BLOCK_TAGS:
        return "\n"
    if name == "img":
        return _attr_value(_ALT, m.group("attrs")) or ""
    if name in _CELL_TAGS:
        return " "
    if name in _KNOWN_TAGS or ":" in name:
        return ""
    return m.group(0)


def strip_html(text: str) -> str:
    """Turn HTML into plain text, keeping link targets."""
    if ("<" not in text and "&" not in text) or not _HTML_HINT.search(text):
        return text
    out = _sub_html_tokens(text)
    # Unescape only after tags are gone, so "&lt;b&gt;" ends up as the literal text "<b>".
    if out != text or _ENTITY.search(out):
        out = html.unescape(out)
    return out


# --------------------------------------------------------------------------------------
# Character-level clean-up
# --------------------------------------------------------------------------------------


def nfkc(text: str) -> str:
    """Fold compatibility characters (fullwidth, ligatures, styled letters) so look-alikes compare equal."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)


# Zero-width and format characters, bidi controls, soft hyphen, Hangul fillers, tag characters
# and C0/C1 controls (except tab and newline) are deleted; odd spaces become " ", Unicode line
# breaks "\n".  One character class, one scan; the callback only runs on the rare hits.
_ODD_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00a0\u00ad\u034f\u061c\u115f\u1160\u1680\u180e"
    "\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u2069\u3000\u3164\ufeff\uffa0"
    "\U000e0000-\U000e007f]"
)
_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_ODD_SPACES = frozenset("\x0b\x0c\u00a0\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B))))
_ODD_LINEBREAKS = frozenset("\x85\u2028\u2029")


def _odd_char_replacement(m: re.Match) -> str:
    """Say what one odd character becomes: a space, a newline, or nothing."""
    ch = m.group()
    if ch in _ODD_SPACES:
        return " "
    return "\n" if ch in _ODD_LINEBREAKS else ""


def remove_invisible(text: str) -> str:
    """Drop zero-width, bidi and control characters and unify odd spaces, which spammers use to split words."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii():
        raw = text.encode("ascii")
        if len(raw.translate(None, _ASCII_CONTROL_BYTES)) == len(raw):
            return text
        return _ASCII_CONTROL.sub(_odd_char_replacement, text)
    return _ODD_CHARS.sub(_odd_char_replacement, text)


_TYPOGRAPHIC_MAP = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u02bc\u2039\u203a", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
    "\u2026": "...",
}
_TYPOGRAPHIC = re.compile("[" + "".join(_TYPOGRAPHIC_MAP) + "]")


def _typographic_replacement(m: re.Match) -> str:
    """Look up the ASCII spelling of one typographic character."""
    return _TYPOGRAPHIC_MAP[m.group()]


_CLEAN_CHARS = re.compile(_ODD_CHARS.pattern[:-1] + _TYPOGRAPHIC.pattern[1:])


def _clean_char_replacement(m: re.Match) -> str:
    """Replacement for one character of either remove_invisible's or straighten_quotes's set."""
    ch = m.group()
    typographic = _TYPOGRAPHIC_MAP.get(ch)
    return typographic if typographic is not None else _odd_char_replacement(m)


def _invisible_and_quotes(text: str) -> str:
    """remove_invisible then straighten_quotes in a single scan (their character sets are disjoint)."""
    if text.isascii():
        return remove_invisible(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CLEAN_CHARS.sub(_clean_char_replacement, text)


def straighten_quotes(text: str) -> str:
    """Map typographic quotes, primes, dashes and the ellipsis to ASCII so patterns need only one spelling."""
    if text.isascii():
        return text
    return _TYPOGRAPHIC.sub(_typographic_replacement, text)


# --------------------------------------------------------------------------------------
# deobfuscate
# --------------------------------------------------------------------------------------

_BRACKET_DOT = r"[ \t]*[\[({<][ \t]*(?:(?i:dot)|\.)[ \t]*[\])}>][ \t]*"
_WORDY_DOT = r"[ \t]+(?i:dot)[ \t]+|[ \t]+\.[ \t]+"
_OBF_SEP = rf"(?:{_BRACKET_DOT}|{_WORDY_DOT})"
_ANY_SEP = rf"(?:{_OBF_SEP}|\.)"

# Finders for a spelled-out / spaced / bracketed dot.  They start with a rare character ("d",
# ".") so the engine can skip ahead; the costly chain regex then runs only in a small window
# around each hit.
_DOT_WORD_HIT = re.compile(r"[dD][oO][tT](?<=[ \t\[({<][dD][oO][tT])(?=[ \t]|[ \t]*[\])}>])")
_DOT_CHAR_HIT = re.compile(r"\.(?:(?<=[ \t\[({<]\.)|(?<=[ \t\[({<][ \t]\.)|(?=[ \t]?[\])}>]))")
_HXXP = re.compile(r"[hH](?<![\w][hH])[xX][xX][pP]([sS]?)(?:\[:\]|:)//")
_SPACED_WWW = re.compile(
    rf"[wW](?<![\w.][wW])[ \t]*[wW][ \t]*[wW](?:{_OBF_SEP}|\.|[ \t]+)"
    rf"(?={_LABEL}(?:{_ANY_SEP}{_LABEL}){{0,8}}{_ANY_SEP}(?i:{_TLD_ALT})(?![\w-]))"
)
_DOMAIN_CHAIN = re.compile(
    rf"(?<![\w.@-])(?P<chain>(?P<first>{_LABEL})(?:{_ANY_SEP}{_LABEL}){{0,8}}{_ANY_SEP}(?P<tld>(?i:{_TLD_ALT})))"
    rf"(?![\w-]|\.[A-Za-z0-9])"
)
_OBF_SEP_RE = re.compile(_OBF_SEP)
_WORDY_DOT_RE = re.compile(_WORDY_DOT)
_WORDY_TLD_END = re.compile(r"[ \t]*(?:$|\n|[^\w\s]|[ \t][A-Z0-9])")
_DOTCOM_PHRASE = re.compile(
    r"[ \t]+(?i:bubble|boom|bust|burst|era|crash|compan(?:y|ies)|days|startups?|age|mania|millionaires?)\b"
)
_DOT_STOPWORDS = frozenset(
    """
    the a an this that these those my your his her its our their one each every any some no
    of in on at to for with by from and or but is was be are were as per into onto than
    red blue green black white yellow orange purple pink grey gray bright dark big small tiny
    large huge single little first last next same another other decimal polka center centre
    middle connect dot dots
    """.split()
)
_BRACKET_AT_DOMAIN = rf"(?=(?:{_LABEL}\.){{1,8}}[A-Za-z]{{2,24}}\b)"
_SPACED_AT_DOMAIN = rf"(?=(?:{_LABEL}\.){{1,8}}(?i:{_TLD_ALT})\b)"
_OBF_AT = re.compile(
    rf"""
    [ \t\[({{<](?<=[A-Za-z0-9_.+-].)
    (?: (?<=[\[({{<])[ \t]*(?i:at)[ \t]*[\])}}>][ \t]*{_BRACKET_AT_DOMAIN}
      | (?<=[ \t])[ \t]*(?: [\[({{<][ \t]*(?i:at)[ \t]*[\])}}>][ \t]*{_BRACKET_AT_DOMAIN}
                         | @[ \t]+{_SPACED_AT_DOMAIN} )
    )
    """,
    re.X,
)
_SEP_EDGE = " \t[({<])}>"


def _has_bracketed_at(low: str) -> bool:
    """Cheap gate for '[at]', '(at)', '{ at }' ...: plain `in` tests beat a regex scan here."""
    for closer in ")]}>":
        if closer in low and ("at" + closer in low or "at " + closer in low):
            return True
    return False


def _hxxp_replacement(m: re.Match) -> str:
    """Restore the scheme that 'hxxp://' or 'hxxps[:]//' disguises."""
    return "https://" if m.group(1) else "http://"


def _undo_dot_chain(m: re.Match) -> str:
    """Rejoin one 'brand dot com' style chain unless it reads like ordinary prose."""
    chain = m.group("chain")
    if not _OBF_SEP_RE.search(chain):
        return chain
    if _WORDY_DOT_RE.search(chain):
        # Spelled-out or spaced dots are also normal English: apply the prose guards.
        if m.group("first").lower() in _DOT_STOPWORDS:
            return chain
        tld = m.group("tld").lower()
        if tld in _WORDY_TLDS and not _WORDY_TLD_END.match(m.string, m.end()):
            return chain
        if tld == "com" and _DOTCOM_PHRASE.match(m.string, m.end()):
            return chain
    return _OBF_SEP_RE.sub(".", chain)


def _chain_windows(text: str, word_hits: bool) -> list[tuple[int, int]]:
    """Find the stretches around obfuscated dots: from the token before to the token after."""
    hits = [m.span() for m in _DOT_CHAR_HIT.finditer(text)]
    if word_hits:
        hits.extend(m.span() for m in _DOT_WORD_HIT.finditer(text))
        hits.sort()
    windows: list[tuple[int, int]] = []
    n = len(text)
    for start, end in hits:
        while start and text[start - 1] in _SEP_EDGE:
            start -= 1
        while end < n and text[end] in _SEP_EDGE:
            end += 1
        # A hit that ends inside the last window cannot widen it (that window ends where the
        # token after its last hit ends), and a search for the token's start need not look
        # before the last window's end: both keep a long token of hits linear, not quadratic.
        last_right = windows[-1][1] if windows else 0
        if windows and end <= last_right:
            continue
        left = max(text.rfind(" ", last_right, start), text.rfind("\n", last_right, start),
                   text.rfind("\t", last_right, start)) + 1
        right = _NONSPACE_RUN.match(text, end).end()
        if windows and left <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], right))
        else:
            windows.append((left, right))
    return windows


def _undo_dot_chains(text: str, word_hits: bool) -> str:
    """Rejoin every obfuscated domain, scanning only the windows around obfuscated dots."""
    pieces = []
    last = 0
    for left, right in _chain_windows(text, word_hits):
        for m in _DOMAIN_CHAIN.finditer(text, left, right):
            fixed = _undo_dot_chain(m)
            if fixed != m.group(0):
                pieces.append(text[last : m.start()])
                pieces.append(fixed)
                last = m.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def deobfuscate(text: str) -> str:
    """Undo 'brand dot com', '[at]', 'w w w' and 'hxxp' tricks used to dodge link and contact filters."""
    low = text.lower()
    if "hxxp" in low:
        text = _HXXP.sub(_hxxp_replacement, text)
    if "w w" in low or "www " in low:
        text = _SPACED_WWW.sub("www.", text)
    word_hits = "dot" in low
    if word_hits or ("." in text and _DOT_CHAR_HIT.search(text)):
        text = _undo_dot_chains(text, word_hits)
    if ("@" in text and (" @" in text or "\t@" in text)) or _has_bracketed_at(low):
        text = _OBF_AT.sub("@", text)
    return text


# --------------------------------------------------------------------------------------
# squeeze_space / normalise
# --------------------------------------------------------------------------------------

# Literal prefixes ("  ", "\n\n\n") let the regex engine skip straight to candidate spots.
_MULTI_SPACE = re.compile(r"  +")
_MANY_NL = re.compile(r"\n\n\n+")


def squeeze_space(text: str) -> str:
    """Collapse whitespace runs so tokenisation and length features do not depend on layout."""
    if "\t" in text or "\f" in text or "\v" in text:
        text = text.replace("\t", " ").replace("\f", " ").replace("\v", " ")
    if "  " in text:
        text = _MULTI_SPACE.sub(" ", text)
    if "\n" in text:
        text = text.replace(" \n", "\n").replace("\n ", "\n")
        if "\n\n\n" in text:
            text = _MANY_NL.sub("\n\n", text)
    return text.strip()


def normalise(text: str) -> str:
    """Normalise one piece of post text: strip_html, nfkc, remove_invisible, straighten_quotes,
    deobfuscate, squeeze_space, in that order.

    Why this order:
    * strip_html first: entities can encode anything the later steps look for
      (&#8203; is a zero-width space, &rdquo; a curly quote, &nbsp; an odd space),
      and link targets hidden in href attributes must become text before link
      clean-up.  It unescapes entities itself only after removing tags, so
      "&lt;b&gt;" stays visible as "<b>".
    * nfkc before the character maps: NFKC turns fullwidth / styled look-alikes
      ("ｗｗｗ．ｂｒａｎｄ．ｃｏｍ", "ℌ", "＂") into plain characters, so the later
      steps only need ASCII patterns.
    * remove_invisible before deobfuscate and squeeze_space: "w\\u200bw\\u200bw"
      must become "www", and NBSP must become a plain space, before spaced-out
      patterns are matched and runs of spaces collapsed.
    * straighten_quotes before deobfuscate and URL finding: curly quotes around a
      URL then become ASCII punctuation that the URL matcher strips, and unicode
      dashes inside phone numbers become "-".
    * deobfuscate before squeeze_space: it relies on the characters being clean,
      and may leave spacing that squeeze_space then tidies.
    * squeeze_space last: every earlier step can delete characters or insert
      newlines, leaving irregular whitespace behind.
    remove_invisible and straighten_quotes run here as one regex scan: their
    character sets are disjoint and neither produces input for the other, so the
    result equals running them in turn (a test checks this).

    Where the compiled step is built, plain ASCII text (most sentences), which no step but
    squeeze_space can change, is recognised and squeezed in one pass (tests compare the two).
    """
    if _compiled_plain_normalise is not None:
        plain = _compiled_plain_normalise(text)
        if plain is not None:
            return plain
    return python_normalise(text)


def python_normalise(text: str) -> str:
    """`normalise` step by step (the fallback, and what tests compare with)."""
    text = strip_html(text)
    text = nfkc(text)
    text = _invisible_and_quotes(text)  # == straighten_quotes(remove_invisible(text)), one scan
    text = deobfuscate(text)
    return squeeze_space(text)


# --------------------------------------------------------------------------------------
# URLs, e-mail addresses, phone numbers
# --------------------------------------------------------------------------------------

# URLs are found from cheap anchors ("://", "www.", ".<tld>") instead of one big regex tried at
# every position: the anchors are found with `str.find` or a regex that starts with a literal.
_URL_BODY = r"[^\s<>\"`\[\]{}|\\^]"
_SCHEMES = frozenset(("http", "https", "ftp"))
_SCHEME_URL = re.compile(rf"(?:https?|ftp)://{_URL_BODY}+", re.I)
_WWW_HEAD = rf"www\d{{0,3}}\.{_LABEL}\.[A-Za-z]"
_WWW_URL = re.compile(rf"{_WWW_HEAD}{_URL_BODY}*", re.I)
_WWW_HEAD_RE = re.compile(_WWW_HEAD, re.I)
_TLD_HIT = re.compile(r"\.([A-Za-z]{2,12})(?![\w@-]|\.[A-Za-z0-9])")  # TLD checked against the set
_HOST_CHARS = re.compile(r"[A-Za-z0-9.-]*")  # matched forwards, and on the reversed text backwards
_BARE_DOMAIN = re.compile(
    rf"(?<![\w.@/:%+-])(?P<first>{_LABEL})(?:\.{_LABEL}){{0,10}}\.(?:{_TLD_ALT})"
    rf"(?![\w@-]|\.[A-Za-z0-9])(?::\d{{2,5}})?(?:[/?\#]{_URL_BODY}*)?",
    re.I,
)
_URL_TRAILING = frozenset(".,;:!?'\"*")
_URL_CLOSERS = {")": "(", "]": "[", "}": "{"}
# First labels that show a dotted name is code or a reverse-DNS package, not a domain.
_CODE_FIRST_LABELS = frozenset(
    """
    com org net edu io self this cls np os sys plt pd df cv cv2 ij imp obj args kwargs
    params config cfg opts options event evt el elem node window document math torch tf
    rect bbox style props state ctx app
    """.split()
)


def _trimmed_end(text: str, start: int, end: int, tails: dict) -> int:
    """Where the URL text[start:end] ends once the sentence punctuation and unbalanced closing
    brackets that stuck to it are dropped, read from the end.

    Many URLs can share an end (anchors nested in one run), so the run of punctuation and closers
    before `end` is read once and kept in `tails`. In that run there are no opening brackets, so
    a span keeps the i-th closer of a kind from the end exactly when i exceeds its surplus of
    those closers: the ones before the run (counted in the span) plus those in it, less the
    openers. Trimming each nested URL over a long tail was quadratic.
    """
    tail = tails.get(end)
    if tail is None:
        run = end
        closers: dict[str, list[int]] = {c: [] for c in _URL_CLOSERS}
        while run > 0 and (text[run - 1] in _URL_TRAILING or text[run - 1] in _URL_CLOSERS):
            run -= 1
            if text[run] in _URL_CLOSERS:
                closers[text[run]].append(run)
        tail = tails[end] = (run, {c: positions[::-1] for c, positions in closers.items()})
    run, closers = tail
    run = max(run, start)
    kept = -1
    for closer, positions in closers.items():
        first = bisect_left(positions, run)
        in_tail = len(positions) - first
        if not in_tail:
            continue
        surplus = text.count(closer, start, run) + in_tail - text.count(_URL_CLOSERS[closer], start, run)
        if surplus < in_tail:  # the (surplus + 1)-th closer from the end is kept
            kept = max(kept, positions[len(positions) - max(surplus, 0) - 1])
    return kept + 1 if kept >= 0 else run


def _scheme_and_www_urls(text: str) -> list[tuple[int, int]]:
    """Spans of 'scheme://...' and 'www....' URLs, found from their literal anchors.

    A URL runs to the first character that cannot be in one, so an anchor inside the last URL
    found gives a URL that ends where that one does: only its head is matched, not the run again
    (a long run of anchors was quadratic).
    """
    spans = []
    last_start = last_end = 0  # the last URL matched: URL characters from start to end
    pos = text.find("://")
    while pos != -1:
        for start in (pos - 5, pos - 4, pos - 3):
            if (
                start >= 0
                and text[start:pos].lower() in _SCHEMES
                and not (start and (text[start - 1].isalnum() or text[start - 1] == "_"))
            ):
                if last_start <= start < last_end:
                    if pos + 3 < last_end:  # the scheme, "://" and at least one URL character
                        spans.append((start, last_end))
                else:
                    m = _SCHEME_URL.match(text, start)
                    if m:
                        spans.append(m.span())
                        last_start, last_end = m.span()
                break
        pos = text.find("://", pos + 3)
    for anchor in ("www", "WWW", "Www"):
        pos = text.find(anchor)
        while pos != -1:
            if not (pos and (text[pos - 1].isalnum() or text[pos - 1] in "._/-")):
                if last_start <= pos < last_end:
                    if _WWW_HEAD_RE.match(text, pos, last_end):
                        spans.append((pos, last_end))
                else:
                    m = _WWW_URL.match(text, pos)
                    if m:
                        spans.append(m.span())
                        last_start, last_end = m.span()
            pos = text.find(anchor, pos + 3)
    spans.sort()
    return spans


def _is_code_name(m: re.Match, text: str) -> bool:
    """Tell dotted names from code ('df.info(', 'org.apache.commons.io') apart from domains."""
    end = m.end()
    if end < len(text) and text[end] in "(=":
        return True
    first = m.group("first").lower()
    return first in _CODE_FIRST_LABELS and not (first == "app" and "/" in m.group(0))


def _bare_domains(text: str, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans of bare domains ('brand.com/x'), found from '.<tld>' and grown leftwards.

    Hits come in text order; the URLs in `taken` are walked alongside them, and the hits in one
    run of host characters share that run's start and the domain matched from it, so a long run
    of '.com' is read a bounded number of times, not once a hit.
    """
    spans = []
    reversed_text = None
    n = len(text)
    done = 0  # end of the last accepted domain, or of a URL covering the hit
    next_taken, taken_end = 0, 0  # URLs starting at or before the hit, and the furthest end among them
    run_seen = skipped = -1  # the last hit in a host-character run, and where its skipping of '.' and '-' ended
    matched_at, matched = -1, None
    for hit in _TLD_HIT.finditer(text):
        dot = hit.start()
        if dot < done or hit.group(1).lower() not in URL_TLDS:
            continue
        while next_taken < len(taken) and taken[next_taken][0] <= dot:
            taken_end = max(taken_end, taken[next_taken][1])
            next_taken += 1
        if taken_end > dot:
            continue  # inside a URL
        if run_seen >= 0 and _HOST_CHARS.fullmatch(text, run_seen, dot):
            start = skipped  # the same run as the last hit: resume its skipping of '.' and '-'
        else:
            if reversed_text is None:
                reversed_text = text[::-1]
            start = dot - (_HOST_CHARS.match(reversed_text, n - dot).end() - (n - dot))
        run_seen = dot
        while start < dot and text[start] in ".-":
            start += 1
        skipped = start
        if start != matched_at:
            matched_at, matched = start, _BARE_DOMAIN.match(text, start)
        m = matched
        if m is None or m.end() <= dot or _is_code_name(m, text):
            continue
        spans.append(m.span())
        done = m.end()
    return spans


def find_urls(text: str) -> list[str]:
    """List the URLs and bare domains in normalised text, in order of appearance."""
    if "." not in text:
        return []
    spans = _scheme_and_www_urls(text) if ("://" in text or "ww" in text or "WW" in text) else []
    spans = sorted(spans + _bare_domains(text, spans))
    urls = []
    last_end = 0
    tails: dict = {}
    for start, end in spans:
        if start < last_end:
            continue  # "www.x.com" is found both as a www URL and as a bare domain
        url = text[start : _trimmed_end(text, start, end, tails)]
        if "://" in url and url.endswith("://"):
            continue
        if url:
            urls.append(url)
            last_end = end
    return urls


_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_URL_HOST_END = re.compile(r"[/?#]")
_WWW_PREFIX = re.compile(r"^www\d{0,3}\.")
_PORT = re.compile(r":\d*$")


def may_hold_links(text: str) -> bool:
    """False when find_emails, find_urls and find_phones certainly find nothing in `text`, so a
    caller can skip them (compiled where built: one pass over plain ASCII text; without it,
    always True)."""
    if _compiled_may_hold_links is not None:
        return _compiled_may_hold_links(text, URL_TLDS)
    return True


def url_domain(url: str) -> str:
    """Reduce a URL to its registrable-looking host so links to one site group together."""
    host = _URL_SCHEME.sub("", url.strip(), count=1)
    host = _URL_HOST_END.split(host, maxsplit=1)[0]
    host = host.rpartition("@")[2]
    host = _PORT.sub("", host).lower().rstrip(".")
    return _WWW_PREFIX.sub("", host, count=1)


_EMAIL_RE = re.compile(
    rf"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{{0,63}}@(?:{_LABEL}\.){{1,10}}(?P<tld>[A-Za-z]{{2,24}})"
    rf"(?![\w-]|\.[A-Za-z0-9]|@)"
)
_NOT_EMAIL_TLDS = frozenset("png jpg jpeg gif svg webp tif tiff bmp".split())


def find_emails(text: str) -> list[str]:
    """List e-mail addresses, skipping retina image names like 'logo@2x.png'."""
    if "@" not in text:
        return []
    return [
        m.group(0)
        for m in _EMAIL_RE.finditer(text)
        if m.group("tld").lower() not in _NOT_EMAIL_TLDS and ".." not in m.group(0)
    ]


# Starts with a character class (not a look-behind) so the engine skips letters quickly.
_PHONE_CAND = re.compile(
    r"""
    [+(0-9]
    (?<![\w+.,/@\#&=:%$-].)
    (?: (?<=\+)[ \t]?(?:\([ \t]?)?\d
      | (?<=\()[ \t]?\d
      | (?<=\d)
    )
    [\dOo]*
    (?:
        (?: [ \t]?\)[ \t]?(?:[-.\u2013][ \t]?)?
          | [ \t]?[-.\u2013][ \t]?(?:\([ \t]?)?
          | [ \t]{1,2}\([ \t]?
          | [ \t]{1,2}
        )
        \d[\dOo]*
    ){0,14}
    (?!\w|[.,/-]\d)
    """,
    re.X,
)
_PHONE_DIGITS = re.compile(r"\d+")
_PHONE_SEPCHARS = re.compile(r"[^\d\s+]")
_O_TO_ZERO = str.maketrans("Oo", "00")
_DATE_IN = re.compile(
    r"(?<!\d)(?:(?:19|20)\d\d[-./\u2013](?:0?[1-9]|1[0-2])[-./\u2013](?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-./\u2013](?:0?[1-9]|[12]\d|3[01])[-./\u2013](?:19|20)\d\d)(?!\d)"
)
_PHONE_CUE = re.compile(
    r"(?i)\b(?:call|phone|tel|telephone|mobile|cell|whats\s?app|contact|dial|text|sms|hotline"
    r"|helpline|toll[- ]free|number|no)\b\W{0,4}(?:\w+\W{1,3}){0,2}$"
)


def _is_progression(digits: str) -> bool:
    """Tell counting sequences like '1 2 3 4 5 6 7' apart from spaced-out phone digits."""
    step = int(digits[1]) - int(digits[0])
    return all(int(b) - int(a) == step for a, b in zip(digits, digits[1:]))


def _phone_cued(text: str, start: int) -> bool:
    """Tell whether words like 'call' or 'phone' come just before a number."""
    return _PHONE_CUE.search(text, max(0, start - 40), start) is not None


def _phone_digits(text: str, m: re.Match) -> str | None:
    """Decide whether a digit run with separators is a phone number; return its digits or None."""
    cand = m.group()
    has_plus = cand[0] == "+"
    norm = cand.translate(_O_TO_ZERO) if ("O" in cand or "o" in cand) else cand
    groups = _PHONE_DIGITS.findall(norm)
    lens = [len(g) for g in groups]
    count = sum(lens)
    if count < 7 or count > 15:
        return None
    digits = "".join(groups)
    if len(groups) == 1:  # no separators at all: IDs, DOIs, counts -> only with a strong cue
        if count >= 8 and has_plus:
            return digits
        return digits if count >= 10 and _phone_cued(text, m.start()) else None
    if _DATE_IN.search(norm):
        return None
    if all(n == 1 for n in lens):  # "1 8 0 0 5 5 5 0 1 9 9"
        if set(digits) <= {"0", "1"} or _is_progression(digits):
            return None
        return digits
    if lens[-1] == 1:  # ISBNs, version numbers
        return None
    seps = set(_PHONE_SEPCHARS.findall(norm))
    if "." in seps:
        if len(groups) == 2 or 1 in lens:  # decimals, versions, IPs
            return None
        if len(groups) == 4 and all(n <= 3 and int(g) <= 255 for n, g in zip(lens, groups)):
            return None  # IPv4
        if all(n == 3 for n in lens[1:]) and lens[0] <= 3:
            return None  # 10.000.000
    if all(n == 4 and g[:2] in ("19", "20") for n, g in zip(lens, groups)):
        return None  # runs of years
    if has_plus or "(" in seps or ")" in seps:
        return digits
    if not seps:  # only spaces: numeric tables look like this too
        if groups[0][0] == "0" or groups[0] == "1" or lens == [3, 3, 4]:
            return digits
        return digits if _phone_cued(text, m.start()) else None
    if len(groups) == 2 and lens != [3, 4]:  # "1000-20000" is a range, "555-0199" a local number
        return digits if _phone_cued(text, m.start()) else None
    return digits


def find_phones(text: str) -> list[str]:
    """List phone numbers as digit strings (leading '+' kept), preferring a miss over a false hit."""
    phones = []
    for m in _PHONE_CAND.finditer(text):
        if m.end() - m.start() < 7:
            continue  # too short to hold seven digits
        digits = _phone_digits(text, m)
        if digits is not None:
            phones.append("+" + digits if m.group()[0] == "+" else digits)
    return phones


# --------------------------------------------------------------------------------------
# sentence_spans
# --------------------------------------------------------------------------------------

_MAX_SPAN = 1000

_FENCE = re.compile(
    r"^[ \t]{0,3}(?P<fc>`{3,}|~{3,})[^`\n]*(?:\n.*?(?:\n[ \t]{0,3}(?P=fc)[`~]*[ \t]*(?=\n|\Z)|\Z)|\Z)",
    re.M | re.S,
)
_SS_BLOCK_TAGS = frozenset(
    """
    p div br li ul ol blockquote h1 h2 h3 h4 h5 h6 tr td th table thead tbody tfoot hr
    section article header footer aside nav dl dt dd figure figcaption main details summary
    form fieldset body html head title center
    """.split()
)
# HTML constructs, then inline code spans.  Each pattern starts with a literal ("<", "`") so
# the engine jumps from one to the next instead of trying every position; _SS_HTML is read
# through html_matches, which keeps unclosed tags linear.
_SS_HTML = re.compile(
    r"""
    <(?: (?P<skip>(?:script|style)\b[^>]*>.*?(?:</(?:script|style)\s*>|\Z))
       | (?P<comment>!--.*?(?:-->|\Z))
       | (?P<pre>pre\b[^>]*>.*?(?:</pre\s*>|\Z))
       | (?P<tag>/?(?P<tn>[A-Za-z][A-Za-z0-9]*)\b[^<>]*>)
     )
    """,
    re.I | re.S | re.X,
)
# Inline code spans by definition; inline_code_spans finds the same in linear time (tests compare).
_SS_INLINE_CODE = re.compile(r"`(?P<bt>`*)[^`\n](?:[^\n]*?[^`\n])??`(?P=bt)(?!`)")
_BACKTICKS = re.compile(r"`+")
# Abbreviations after which a full stop does not end the sentence, grouped by length because
# each look-behind must have a fixed width.  The BEFORE_NUM ones only count before a number.
_ABBR_ALWAYS_2 = "al|vs|dr|mr|ms|st|jr|sr|pp|cf|ca|eq|mt|lt|ft"
_ABBR_ALWAYS_3 = "fig|mrs|vol|ref|sec|eqs|viz|gen|col|sgt|gov|sen|rep|est"
_ABBR_ALWAYS_4 = "figs|prof|refs|resp|incl|dept|capt|ibid|vols|secs"
_ABBR_ALWAYS_6 = "approx"
_ABBR_BEFORE_NUM_2 = "no|nr|ch|pt|op"
_ABBR_BEFORE_NUM_3 = "tab|art|jan|feb|mar|apr|jun|jul|aug|sep|oct|nov|dec|eds"
_ABBR_BEFORE_NUM_4 = "sept|sect"
# A line ending in one of these words (or a comma, hyphen ...) continues on the next line.
_RUNON_WORDS = {
    1: "a",
    2: "of|to|or|by|in|on|at|as|is|be|my|de|la|le|da|mr|ms|dr|st|an",
    3: "the|and|nor|but|for|our|his|her|its|are|was|von|van|der|del|via|per",
    4: "with|from|into|onto|than|that|this|your|were|been|over",
    5: "these|those|their|about|under",
    7: "between",
}
_RUNON_LOOKBEHINDS = "".join(
    rf"(?<!\b(?i:{words})\n)" for words in _RUNON_WORDS.values()
)
_CODE_LINE = (
    r"(?:import|from)\s+[\w.]+(?:\s+import\b|\s*(?:as\s+\w+\s*)?$)"
    r"|(?:def|class)\s+\w+\s*[(:]"
    r"|(?:if|for|while|switch|catch)\s*\("
    r"|for\s+\w+\s+in\s+\S+:"
    r"|(?:var|let|const)\s+\w+\s*="
    r"|(?:public|private|protected|static)\s"
    r"|[{}]|//|/\*|\#include|\#!|\#@|>>>|\$\s"
    r"|[\w.]+\([^()\n]*\)[ \t]*;?[ \t]*$"
    r"|[\w.]+(?:\[[^\]\n]*\])?[ \t]*[-+*/]?=[ \t]*\S"
)
# Every boundary starts at one of these characters; putting that class first lets the regex
# engine skip the rest of the text without trying each position.  Each boundary also swallows
# the whitespace after it, so the next sentence starts right at the match end.
_BOUNDARY = re.compile(
    rf"""
    [\n:.!?\u2026\u3002\uff01\uff1f]
    (?:
        (?<=\n)
        (?: (?P<blank>[ \t\r\f\v]*\n)\s*
          | (?P<nlb>(?=[ \t]*(?:[-*+\u2022\u2023\u25aa\u25e6][ \t]|\d{{1,3}}[.)][ \t]|>|\#{{1,6}}[ \t]|\|)
                      |[ \t]{{4}}|\t|(?:{_CODE_LINE})))[ \t]*
          | (?P<nlu>(?=[ \t]*[A-Z])(?<![,;(\-\u2013\u2014/&+]\n){_RUNON_LOOKBEHINDS})[ \t]*
        )
      | (?<=:)(?P<colon>)[ \t]*\r?\n\s*
      | (?=[\s.!?\u2026)\]'"\u2019\u201d\u00bb*_])    # cheap early exit: sentence punctuation needs these next
        (?P<punct>
          (?: (?<=\.)\.+[!?\u2026]*
            | (?<=\.)
              (?: (?<=[^\W\d_]{{5}}\.)(?<!\b(?i:{_ABBR_ALWAYS_6})\.)  # checks by length of the word before
                | (?<=(?<![^\W\d_])[^\W\d_]{{4}}\.)(?<!\b(?i:{_ABBR_ALWAYS_4})\.)(?!(?<=\b(?i:{_ABBR_BEFORE_NUM_4})\.)\s+\d)
                | (?<=(?<![^\W\d_])[^\W\d_]{{3}}\.)(?<!\b(?i:{_ABBR_ALWAYS_3})\.)(?!(?<=\b(?i:{_ABBR_BEFORE_NUM_3})\.)\s+\d)
                | (?<=(?<![^\W\d_])[^\W\d_]{{2}}\.)(?<!\b(?i:{_ABBR_ALWAYS_2})\.)(?!(?<=\b(?i:{_ABBR_BEFORE_NUM_2})\.)\s+\d)
                | (?<=\d[^\W\d_]\.)                                  # "H2O." (one letter after a digit)
                | (?<![^\W\d_]\.)(?<!^\d\.)(?<!^\d\d\.)(?<!^\d\d\d\.)  # not after a letter, not "1." list items
              )
              [!?]*
            | (?<=[!?\u2026\u3002\uff01\uff1f])[.!?\u2026]*
          )
          [)\]'"\u2019\u201d\u00bb*_]*
        )
        \s+
      | (?P<glued>
          (?<=[a-z][a-z]\.)(?=[A-Z][a-z])
        | (?<=[a-z][!?])[!?]*(?=[A-Z][a-z])
        )
    )
    """,
    re.M | re.X,
)
# The same word lists and code-line test for the compiled splitter (one definition, above).
_SPLIT_WORDS = tuple(
    frozenset("|".join(group).split("|"))
    for group in (
        (_ABBR_ALWAYS_2, _ABBR_ALWAYS_3, _ABBR_ALWAYS_4, _ABBR_ALWAYS_6),
        (_ABBR_BEFORE_NUM_2, _ABBR_BEFORE_NUM_3, _ABBR_BEFORE_NUM_4),
        tuple(_RUNON_WORDS.values()),
    )
)
_CODE_LINE_AT = re.compile(_CODE_LINE, re.M | re.X)
_WORD_AHEAD = re.compile(r"[A-Za-z0-9]*")
_MARKUP_ONLY = re.compile(r"(?:<[^<>]*>|&#?\w+;|\s)*", re.S)
_PROTECT, _GAP, _ATOM = 0, 1, 2  # region kinds: no cut inside / excluded separator / whole span


def _glued_is_boundary(text: str, m: re.Match, last_token: list) -> bool:
    """Check that a glued 'word.Word' is copy-paste damage, not a domain, file name or path.

    `last_token` is [from, start, end, is_name] of the token last looked at, kept by the caller
    (glued words come in text order), so that a long run of glued words is read once, not once
    a word: from `from` to the token's end there is no whitespace, so a glued word in between has
    the same token; and when no " ", "\n" or "\t" lies between the last token's end and the next
    glued word, that word's token starts where the last one did and holds it.
    """
    pos = m.start()
    if text[pos] == "." and _WORD_AHEAD.match(text, pos + 1).group().lower() in _GLUE_SAFE_WORDS:
        return False  # "Example.Com", "img.Tif"
    seen_from, start, seen_end, is_name = last_token
    if seen_from <= pos < seen_end:
        return not is_name
    cut = max(text.rfind(" ", seen_end, pos), text.rfind("\n", seen_end, pos), text.rfind("\t", seen_end, pos))
    end = _NONSPACE_RUN.match(text, pos).end()
    if cut == -1 and seen_end:  # the same token, grown: look at what it gained ("www." may straddle)
        new = text[max(start, seen_end - 3) : end]
    else:
        start = cut + 1
        new, is_name = text[start:end], False
    is_name = is_name or "/" in new or "@" in new or "=" in new or "www." in new.lower()
    last_token[:] = [pos, start, end, is_name]
    return not is_name


def inline_code_spans(text: str, pos: int = 0, endpos: int | None = None) -> list[tuple[int, int]]:
    """The spans `_SS_INLINE_CODE.finditer(text, pos, endpos)` finds, in time linear in the text.

    The regex retries the rest of the line for every opening run of backticks, so a line of
    many runs of different lengths took half a second. Its matches are, from left to right: a
    run of k backticks (the whole run, else its last k-1, k-2, ... backticks) that is not
    followed by a newline or the end, up to the next run of exactly k backticks on the same line.
    """
    endpos = len(text) if endpos is None else endpos
    runs = [m.span() for m in _BACKTICKS.finditer(text, pos, endpos)]
    by_length: dict[int, list[int]] = {}
    for i, (start, end) in enumerate(runs):
        by_length.setdefault(end - start, []).append(i)
    spans = []
    i = 0
    newline = -1  # the first newline (or endpos) after the current run
    while i < len(runs):
        start, end = runs[i]
        i += 1
        if end == endpos or text[end] == "\n":
            continue
        if newline < end:
            newline = text.find("\n", end, endpos)
            newline = endpos if newline == -1 else newline
        for k in range(end - start, 0, -1):
            later = by_length.get(k, ())
            j = bisect_right(later, i - 1)
            if j < len(later) and runs[later[j]][0] < newline:
                closer = later[j]
                spans.append((end - k, runs[closer][1]))
                i = closer + 1
                break
    return spans


def _regions_between(
    find, text: str, outer: list[tuple[int, int, int]]
) -> list[tuple[int, int, int]]:
    """Add the regions `find(text, pos, endpos)` gives between the already known ones, in order."""
    merged = []
    pos = 0
    for region in outer + [(len(text), len(text), -1)]:
        merged.extend(find(text, pos, region[0]))
        if region[2] != -1:
            merged.append(region)
        pos = region[1]
    return merged


def _code_regions(text: str, pos: int, endpos: int) -> list[tuple[int, int, int]]:
    return [(start, end, _PROTECT) for start, end in inline_code_spans(text, pos, endpos)]


def _html_regions(text: str, pos: int, endpos: int) -> list[tuple[int, int, int]]:
    return [(*m.span(), _html_region_kind(m)) for m in html_matches(_SS_HTML, text, pos, endpos)]


def _html_region_kind(m: re.Match) -> int:
    """Say how an HTML construct affects splitting: a boundary, a whole span, or just protected."""
    kind = m.lastgroup
    if kind == "tag":
        return _GAP if m.group("tn").lower() in _SS_BLOCK_TAGS else _PROTECT
    if kind == "pre":
        return _ATOM
    return _GAP if kind == "skip" else _PROTECT  # script/style blocks separate; comments do not


def _find_regions(text: str) -> list[tuple[int, int, int]]:
    """Locate code fences, inline code and HTML constructs: places a sentence must not be cut."""
    regions: list[tuple[int, int, int]] = []
    if "```" in text or "~~~" in text:
        regions = [(*m.span(), _ATOM) for m in _FENCE.finditer(text)]
    if "`" in text:
        regions = _regions_between(_code_regions, text, regions)
    if "<" in text:
        regions = _regions_between(_html_regions, text, regions)
    return regions


def _cut_of(text: str, m: re.Match, last_token: list) -> tuple[int, int] | None:
    """Turn one boundary match into (end of this piece, start of next), or None if it is no cut."""
    kind = m.lastgroup
    if kind == "punct" or kind == "colon":
        return m.end(kind), m.end()
    if kind == "glued":
        if not _glued_is_boundary(text, m, last_token):
            return None
        return m.end(), m.end()
    return m.start(), m.end()  # newline kinds: the newline(s) separate the pieces


def _collect_cuts(text: str, regions: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """Find every boundary as (end of previous piece, start of next piece), skipping protected spots."""
    cuts = []
    i, count = 0, len(regions)
    last_token = [0, 0, 0, False]
    for m in _BOUNDARY.finditer(text):
        cut = _cut_of(text, m, last_token)
        if cut is None:
            continue
        while i < count and regions[i][1] <= cut[0]:
            i += 1  # both lists are in text order: walk the regions alongside the cuts
        if i < count and regions[i][0] < cut[0]:
            continue  # inside a tag, code span or fence
        cuts.append(cut)
    for s, e, kind in regions:
        if kind == _GAP:
            cuts.append((s, e))
        elif kind == _ATOM:
            cuts.append((s, s))
            cuts.append((e, e))
    cuts.sort()
    return cuts


def _trimmed(text: str, s: int, e: int) -> tuple[int, int] | None:
    """Shrink a piece to exclude surrounding whitespace; None if nothing but blanks or markup remains."""
    if text[s].isspace() or text[e - 1].isspace():
        seg = text[s:e]
        right = len(seg.rstrip())
        if not right:
            return None
        left = len(seg) - len(seg.lstrip())
        s, e = s + left, s + right
    if (text.find("<", s, e) != -1 or text.find("&", s, e) != -1) and _MARKUP_ONLY.fullmatch(text, s, e):
        return None
    return s, e


def _emit(text: str, s: int, e: int, spans: list, regions, whole: bool = False) -> None:
    """Append the trimmed piece text[s:e], cutting it up if it is too long (unless `whole`)."""
    piece = _trimmed(text, s, e)
    if piece is None:
        return
    s, e = piece
    if e - s <= _MAX_SPAN or whole:
        spans.append(piece)
        return
    starts = [r[0] for r in regions]
    while e - s > _MAX_SPAN:
        limit = s + _MAX_SPAN
        cut = max(text.rfind(" ", s + 1, limit), text.rfind("\n", s + 1, limit), text.rfind("\t", s + 1, limit))
        if cut <= s:
            cut = limit
        i = bisect_right(starts, cut) - 1
        if i >= 0 and s < regions[i][0] < cut < regions[i][1]:
            cut = regions[i][0]  # never inside a tag or inline code
        piece = _trimmed(text, s, cut)
        if piece is not None:
            spans.append(piece)
        piece = _trimmed(text, cut, e)
        if piece is None:
            return
        s, e = piece
    spans.append((s, e))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split RAW text (may contain HTML or Markdown) into sentences; return (start, end) character offsets into `text`.

    Where the compiled step is built, text without HTML or code fences (most posts) is split in
    one pass that finds the same boundaries (3x faster; tests compare the two).
    """
    if _compiled_plain_sentence_spans is not None:
        code = inline_code_spans(text) if "`" in text else []
        spans = _compiled_plain_sentence_spans(text, code, _SPLIT_WORDS, _CODE_LINE_AT.match, _GLUE_SAFE_WORDS,
                                               _MAX_SPAN)
        if spans is not None:
            return spans
    return python_sentence_spans(text)


def python_sentence_spans(text: str) -> list[tuple[int, int]]:
    """`sentence_spans` by the regex (the fallback, and what tests compare with)."""
    if not text or text.isspace():
        return []
    spans: list[tuple[int, int]] = []
    regions = _find_regions(text)
    prev = 0
    if not regions:  # plain text: cuts arrive in order, no filtering or sorting needed
        careful = "<" in text or "&" in text  # pieces might be markup only
        last_token = [0, 0, 0, False]
        for m in _BOUNDARY.finditer(text):
            kind = m.lastgroup
            if kind == "punct":
                end = m.end(kind)
            elif kind == "glued":
                if not _glued_is_boundary(text, m, last_token):
                    continue
                end = m.end()
            elif kind == "colon":
                end = m.end(kind)
            else:
                end = m.start()
            if end > prev:
                if careful or end - prev > _MAX_SPAN or text[prev].isspace() or text[end - 1].isspace():
                    _emit(text, prev, end, spans, regions)
                else:
                    spans.append((prev, end))
            prev = m.end()
        if prev < len(text):
            _emit(text, prev, len(text), spans, regions)
        return spans
    atoms = {s for s, _, kind in regions if kind == _ATOM}
    for g0, g1 in _collect_cuts(text, regions) + [(len(text), len(text))]:
        if g0 > prev:
            _emit(text, prev, g0, spans, regions, whole=prev in atoms)
        if g1 > prev:
            prev = g1
    return spans
