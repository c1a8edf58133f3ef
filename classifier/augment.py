"""Seeded data augmentation, done inside each cross-validation fold.

Two augmentations, both documented in training_data/DATACARD.md:

- **Promotional inserts.** The corpus's own promotional sentences (the `promo` substrings of spam
  posts) are slipped into legitimate and off-topic posts at a random sentence boundary, with the
  copy-paste damage real inserts carry (no space after the full stop, a stray line break). This is
  the hardest real case, and it teaches the model that one such sentence outweighs a page of
  legitimate text.
- **Wrong category.** Legitimate posts are copied into another category and labelled off_topic,
  so the combiner learns what a poor fit between text and category means. These copies never
  reach the base text model (their text is legitimate); only the combiner sees them.

Hosts and donors always come from the same fold, so no variant of a source text ends up on both
sides of a split.
"""
from __future__ import annotations

import random
import re
from dataclasses import replace

from .dataset import Example
from .types import Post

PROMO_KIND = "aug_promo_insert"
CATEGORY_KIND = "aug_wrong_category"
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=\S)|\n\s*\n")


def promo_sentences(examples: list[Example]) -> list[str]:
    """Promotional sentences usable as inserts: single-line, 15-300 characters."""
    out = []
    for e in examples:
        if e.label != "spam":
            continue
        for p in e.promo:
            p = p.strip()
            if 15 <= len(p) <= 300 and "\n" not in p:
                out.append(p)
    return out


def insert_sentence(body: str, sentence: str, rng: random.Random) -> str:
    """Put `sentence` at a random sentence boundary of `body`, sometimes with paste damage."""
    cuts = [m.start() for m in _BOUNDARY.finditer(body)]
    where = rng.choice(["start", "end", "end", "middle", "middle"]) if cuts else rng.choice(["start", "end"])
    if where == "start":
        return sentence + rng.choice([" ", "\n", "\n\n"]) + body
    if where == "end":
        glue = rng.choice([" ", "\n", "\n\n", ""]) if body.rstrip().endswith((".", "!", "?")) else rng.choice([" ", "\n"])
        return body.rstrip() + glue + sentence
    cut = rng.choice(cuts)
    glue = rng.choice([" ", " ", "", "\n"])
    return body[:cut] + glue + sentence + " " + body[cut:].lstrip()


def promo_inserts(examples: list[Example], rate: float, rng: random.Random) -> list[Example]:
    """New spam examples: legitimate or off-topic hosts with one promotional sentence each."""
    donors = promo_sentences(examples)
    hosts = [e for e in examples if e.label in ("ok", "off_topic") and len(e.post.body) >= 80]
    if not donors or not hosts:
        return []
    chosen = rng.sample(hosts, k=min(len(hosts), int(round(rate * len(hosts)))))
    out = []
    for n, host in enumerate(chosen):
        sentence = rng.choice(donors)
        post = Post(id=f"{host.post.id}~promo{n}", title=host.post.title,
                    body=insert_sentence(host.post.body, sentence, rng), category=host.post.category)
        out.append(Example(post=post, label="spam", kind=PROMO_KIND, promo=(sentence,),
                           group=host.group_key, weight=host.weight, source="augmented"))
    return out


def wrong_categories(examples: list[Example], categories: list[str], rate: float, rng: random.Random,
                     weight: float = 0.5) -> list[Example]:
    """New off-topic examples: legitimate posts filed in a category they were not written for."""
    hosts = [e for e in examples if e.label == "ok" and e.post.category in categories
             and len(e.post.body.split()) >= 30]  # a short reply fits any category
    if len(categories) < 2 or not hosts:
        return []
    chosen = rng.sample(hosts, k=min(len(hosts), int(round(rate * len(hosts)))))
    out = []
    for n, host in enumerate(chosen):
        other = rng.choice([c for c in categories if c != host.post.category])
        post = replace(host.post, id=f"{host.post.id}~cat{n}", category=other)
        out.append(Example(post=post, label="off_topic", kind=CATEGORY_KIND, group=host.group_key,
                           weight=weight * host.weight, source="augmented"))
    return out
