"""Session counts of the Taobao UserBehavior head, written independently of din's C, for
test/unit/test_session.c (run with /usr/bin/python3; the data stays in ../shared).

Per user, behaviours sorted by time (stable), a new session after a gap of more than 1800 s.
Writes test/fixtures/taobao_sessions.csv: user, behaviours, sessions (all), sessions of at
least 3 behaviours, and the behaviours DSIN keeps with K = 5, T = 10, min_length 3.
"""

import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "shared", "data", "taobao-userbehavior-head",
                    "UserBehavior_head.csv")
OUT = os.path.join(HERE, "..", "fixtures", "taobao_sessions.csv")


def main():
    by_user = {}
    with open(sys.argv[1] if len(sys.argv) > 1 else DATA) as f:
        for row in csv.reader(f):
            by_user.setdefault(int(row[0]), []).append(int(row[4]))
    with open(OUT, "w") as out:
        out.write("user,behaviours,sessions,sessions_min3,kept_k5_t10_min3\n")
        for user in sorted(by_user):
            ts = sorted(by_user[user])
            sizes = [1]
            for a, b in zip(ts, ts[1:]):
                if b - a > 1800:
                    sizes.append(1)
                else:
                    sizes[-1] += 1
            long = [n for n in sizes if n >= 3]
            kept = sum(min(n, 10) for n in long[-5:])
            out.write("%d,%d,%d,%d,%d\n" % (user, len(ts), len(sizes), len(long), kept))


if __name__ == "__main__":
    main()
