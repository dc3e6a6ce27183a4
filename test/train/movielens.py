#!/usr/bin/python3
"""Load MovieLens ml-latest-small (ratings.csv, movies.csv) into tables for din-train with the
next-item protocol and the rating times, for the architectures that read time (DSIN's
sessions, BST's time gaps; docs/TRAINING.md "MovieLens"):

    /usr/bin/python3 test/train/movielens.py DIR DSN [--train-positions 30]
        [--valid-positions 5] [--test-positions 5] [--seed 0]

ml_items(item_id, genre): genre = the movie's first genre (1-based index in sorted order).
ml_rows(user_id, history bigint[], history_time timestamptz[], at timestamptz, ad_id,
label int, split): a user's ratings in time order (ties by movie id); for a position k the
history is the ratings before k, `at` the time of rating k, the positive row the movie rated
at k, the negative row a random movie the user never rated. split 'test': the last
--test-positions positions; 'valid': the --valid-positions before; 'train': the
--train-positions before those (k >= 2).
"""

import argparse
import csv
import datetime
import io
import os
import random

import psycopg2


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir", help="the ml-latest-small directory")
    p.add_argument("dsn")
    p.add_argument("--train-positions", type=int, default=30)
    p.add_argument("--valid-positions", type=int, default=5)
    p.add_argument("--test-positions", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    with open(os.path.join(a.dir, "movies.csv"), newline="") as f:
        genres = {int(r["movieId"]): r["genres"].split("|")[0] for r in csv.DictReader(f)}
    names = {g: i + 1 for i, g in enumerate(sorted(set(genres.values())))}
    seqs = {}
    with open(os.path.join(a.dir, "ratings.csv"), newline="") as f:
        for r in csv.DictReader(f):
            seqs.setdefault(int(r["userId"]), []).append((int(r["timestamp"]), int(r["movieId"])))
    movies = sorted({m for s in seqs.values() for _, m in s})
    rows = io.StringIO()
    for user, seq in sorted(seqs.items()):
        seq.sort()
        seen = {m for _, m in seq}
        n = len(seq)
        test = n - a.test_positions
        valid = test - a.valid_positions
        for k in range(max(2, valid - a.train_positions + 1), n + 1):
            split = "test" if k > test else "valid" if k > valid else "train"
            hist = "{%s}" % ",".join(str(m) for _, m in seq[:k - 1])
            times = "{%s}" % ",".join('"%s"' % _iso(t) for t, _ in seq[:k - 1])
            neg = rng.choice(movies)
            while neg in seen:
                neg = rng.choice(movies)
            for ad, label in ((seq[k - 1][1], 1), (neg, 0)):
                rows.write("%d\t%s\t%s\t%s\t%d\t%d\t%s\n" % (user, hist, times,
                                                          _iso(seq[k - 1][0]), ad, label, split))
    items = io.StringIO("".join("%d\t%d\n" % (m, names[genres[m]]) for m in movies))
    rows.seek(0)
    conn = psycopg2.connect(a.dsn)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS ml_rows, ml_items")
    cur.execute("CREATE TABLE ml_items (item_id bigint PRIMARY KEY, genre bigint)")
    cur.execute("CREATE TABLE ml_rows (user_id bigint, history bigint[], "
                "history_time timestamptz[], at timestamptz, ad_id bigint, label int, "
                "split text)")
    cur.copy_expert("COPY ml_items FROM STDIN", items)
    cur.copy_expert("COPY ml_rows FROM STDIN", rows)
    conn.commit()
    cur.execute("SELECT split, count(*), count(DISTINCT user_id) FROM ml_rows GROUP BY 1")
    for r in cur.fetchall():
        print("%s: %d rows, %d users" % r)


def _iso(unix):
    """A unix time as a timestamptz literal PostgreSQL reads in any time zone."""
    return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S+00")


if __name__ == "__main__":
    main()
