#!/usr/bin/python3
"""Load an Amazon 5-core set in the S3-Rec layout (NAME.txt: "user item1 item2 ..." in time
order; NAME_item2attributes.json: item -> attribute ids) into tables for din-train, with the
DIEN paper's protocol (docs/TRAINING.md "Amazon"):

    /usr/bin/python3 test/train/amazon.py DIR/Beauty DSN [--train-positions 2]
        [--valid-positions 0] [--seed 0]

amazon_items(item_id, cate): cate = the item's last attribute id (its deepest listed level).
amazon_rows(user_id, history bigint[], ad_id, label int, split): for a user with n items and a
position k, the history is items 1..k-1 (oldest first), the positive row the item k and the
negative row a random item the user never reviewed. split 'test': k = n; split 'valid': the
--valid-positions positions before it; split 'train': the --train-positions positions before
those (k >= 2).
"""

import argparse
import io
import json
import random

import psycopg2


def main():
    p = argparse.ArgumentParser()
    p.add_argument("prefix", help="path without suffix, e.g. DIR/Beauty")
    p.add_argument("dsn")
    p.add_argument("--train-positions", type=int, default=2)
    p.add_argument("--valid-positions", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    with open(a.prefix + "_item2attributes.json") as f:
        attrs = {int(k): v for k, v in json.load(f).items()}
    seqs = []
    with open(a.prefix + ".txt") as f:
        for line in f:
            ids = [int(x) for x in line.split()]
            seqs.append((ids[0], ids[1:]))
    all_items = sorted({i for _, s in seqs for i in s})
    rows = io.StringIO()
    for user, seq in seqs:
        seen = set(seq)
        n = len(seq)
        for k in range(max(2, n - a.valid_positions - a.train_positions), n + 1):
            split = "test" if k == n else "valid" if k >= n - a.valid_positions else "train"
            hist = "{%s}" % ",".join(map(str, seq[:k - 1]))
            neg = rng.choice(all_items)
            while neg in seen:
                neg = rng.choice(all_items)
            for ad, label in ((seq[k - 1], 1), (neg, 0)):
                rows.write("%d\t%s\t%d\t%d\t%s\n" % (user, hist, ad, label, split))
    items = io.StringIO()
    for i in all_items:
        items.write("%d\t%d\n" % (i, attrs[i][-1] if attrs.get(i) else 0))
    conn = psycopg2.connect(a.dsn)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS amazon_rows, amazon_items")
    cur.execute("CREATE TABLE amazon_items (item_id bigint PRIMARY KEY, cate bigint)")
    cur.execute("CREATE TABLE amazon_rows (user_id bigint, history bigint[], ad_id bigint, "
                "label int, split text)")
    items.seek(0)
    rows.seek(0)
    cur.copy_expert("COPY amazon_items FROM STDIN", items)
    cur.copy_expert("COPY amazon_rows FROM STDIN", rows)
    conn.commit()
    cur.execute("SELECT split, count(*), count(DISTINCT user_id) FROM amazon_rows GROUP BY 1")
    for r in cur.fetchall():
        print("%s: %d rows, %d users" % r)


if __name__ == "__main__":
    main()
