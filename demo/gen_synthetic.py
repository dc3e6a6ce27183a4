#!/usr/bin/env python3
"""Synthetic behaviour log for the din demo (standard library only, deterministic).

Items belong to categories and, inside a category, to a hidden "style" the models never see
(they can only learn it through the item embeddings). Each user holds 2-4 interests
(category + preferred style) that drift while the history is written, so old behaviours
may belong to interests the user has dropped. Every user then sees impressions at the end
of the history; the click probability is

    p = sigmoid(A * relevance + popularity[ad] - C),
    relevance = max over the RECENT behaviours b (newest first, age 0, 1, ...) of
                DECAY**age * sim(ad, b),
    sim = 1 for the same item, SAME_STYLE for the same category and style,
          SAME_CATE for the same category, 0 otherwise.

A click hinges on one or a few specific recent behaviours matching the ad: DIN's attention
can single them out, while the base model's mean over the whole (truncated) history dilutes
them among the other interests. Users are split by id into train and test (held out).

Usage: gen_synthetic.py OUTDIR [--only test]
Writes OUTDIR/items.csv (item_id, category), OUTDIR/train.csv and OUTDIR/test.csv
(user_id, history, ad_id, clicked) with history as a PostgreSQL array literal, oldest first.
Only random.random() draws are used so the output is the same on every Python >= 3.9.
"""

import csv
import math
import os
import random
import sys

SEED = 20240611
N_ITEMS = 2000
FIRST_ITEM = 1000  # raw item ids 1000..2999
N_CATEGORIES = 50  # raw category ids 1..50
STYLES = 4  # hidden styles per category
N_USERS = 5000
TEST_EVERY = 5  # users whose id is a multiple of 5 are held out
IMPRESSIONS = 20
MIN_LEN, MAX_LEN = 5, 60
DRIFT = 0.08  # chance per behaviour that one interest is replaced
NOISE = 0.15  # chance a behaviour is a random item
STYLE_LOYALTY = 0.6
RECENT = 20  # behaviours that can drive a click (the models' max_len)
DECAY = 0.93
SAME_STYLE, SAME_CATE = 1.0, 0.6
A, C = 5.0, 3.0


class Draw:
    """random.random() only: its sequence for a given seed is stable across versions."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def uniform(self):
        return self.rng.random()

    def below(self, n):
        return min(int(self.rng.random() * n), n - 1)

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def normal(self):
        # Box-Muller from two uniforms.
        u1 = 1.0 - self.rng.random()
        u2 = self.rng.random()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def make_items(rng):
    ids = list(range(FIRST_ITEM, FIRST_ITEM + N_ITEMS))
    # Shuffle so category membership is not a function of the id (Fisher-Yates).
    for i in range(len(ids) - 1, 0, -1):
        j = rng.below(i + 1)
        ids[i], ids[j] = ids[j], ids[i]
    category, style, popularity = {}, {}, {}
    by_group = {}
    for pos, item in enumerate(ids):
        cate = 1 + pos % N_CATEGORIES
        sty = (pos // N_CATEGORIES) % STYLES
        category[item] = cate
        style[item] = sty
        popularity[item] = 0.5 * rng.normal()
        by_group.setdefault((cate, sty), []).append(item)
    for members in by_group.values():
        members.sort()
    return category, style, popularity, by_group


def new_interest(rng, taken):
    while True:
        cate = 1 + rng.below(N_CATEGORIES)
        if cate not in taken:
            return (cate, rng.below(STYLES))


def item_of_interest(rng, interest, by_group):
    cate, sty = interest
    if rng.uniform() >= STYLE_LOYALTY:
        sty = rng.below(STYLES)
    return rng.pick(by_group[(cate, sty)])


def make_user(rng, items):
    category, style, popularity, by_group = items
    all_items = sorted(category)
    interests = []
    for _ in range(2 + rng.below(3)):
        interests.append(new_interest(rng, {c for c, _ in interests}))
    dropped = []
    history = []
    for _ in range(MIN_LEN + rng.below(MAX_LEN - MIN_LEN + 1)):
        if rng.uniform() < DRIFT:
            k = rng.below(len(interests))
            dropped.append(interests[k])
            interests[k] = new_interest(rng, {c for c, _ in interests})
        if rng.uniform() < NOISE:
            history.append(rng.pick(all_items))
        else:
            history.append(item_of_interest(rng, rng.pick(interests), by_group))
    impressions = []
    for _ in range(IMPRESSIONS):
        u = rng.uniform()
        if u < 0.4:
            ad = item_of_interest(rng, rng.pick(interests), by_group)
        elif u < 0.55 and dropped:
            ad = item_of_interest(rng, rng.pick(dropped), by_group)
        else:
            ad = rng.pick(all_items)
        p = click_probability(ad, history, items)
        impressions.append((ad, 1 if rng.uniform() < p else 0))
    return history, impressions


def similarity(a, b, items):
    category, style = items[0], items[1]
    if a == b:
        return 1.0
    if category[a] != category[b]:
        return 0.0
    return SAME_STYLE if style[a] == style[b] else SAME_CATE


def click_probability(ad, history, items):
    recent = history[-RECENT:]
    relevance = 0.0
    for age, b in enumerate(reversed(recent)):
        relevance = max(relevance, DECAY**age * similarity(ad, b, items))
    z = A * relevance + items[2][ad] - C
    return 1.0 / (1.0 + math.exp(-z))


def array_literal(ids):
    return "{" + ",".join(str(i) for i in ids) + "}"


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2:] != ["--only", "test"]):
        sys.exit("usage: gen_synthetic.py OUTDIR [--only test]")
    out = argv[1]
    only_test = len(argv) == 4
    os.makedirs(out, exist_ok=True)
    rng = Draw(SEED)
    items = make_items(rng)
    with open(os.path.join(out, "items.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["item_id", "category"])
        for item in sorted(items[0]):
            w.writerow([item, items[0][item]])
    files = {"test": open(os.path.join(out, "test.csv"), "w", newline="")}
    if not only_test:
        files["train"] = open(os.path.join(out, "train.csv"), "w", newline="")
    writers = {k: csv.writer(f, lineterminator="\n") for k, f in files.items()}
    for w in writers.values():
        w.writerow(["user_id", "history", "ad_id", "clicked"])
    for user in range(1, N_USERS + 1):
        history, impressions = make_user(rng, items)
        split = "test" if user % TEST_EVERY == 0 else "train"
        if split not in writers:
            continue
        hist = array_literal(history)
        for ad, clicked in impressions:
            writers[split].writerow([user, hist, ad, clicked])
    for f in files.values():
        f.close()


if __name__ == "__main__":
    main(sys.argv)
