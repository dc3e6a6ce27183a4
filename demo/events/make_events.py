#!/usr/bin/env python3
"""The small event log of docs/HISTORIES.md: events.csv and impressions.csv in this directory.

Takes the first USERS held-out users of the synthetic data (demo/gen_synthetic.py, which the
committed demo models were measured on) and gives their behaviours and impressions times, as a
behaviour log would hold them: behaviours a few minutes apart in sessions separated by breaks,
then the user's 20 impressions a minute apart, and a click on an ad logged as a behaviour 20 s
after its impression (so a history built without a time filter sees the clicks it should
predict). Deterministic: standard library only, fixed seed.

    /usr/bin/python3 demo/events/make_events.py
"""

import csv
import datetime
import os
import random
import subprocess
import sys
import tempfile

USERS = 100
SEED = 20240603
HERE = os.path.dirname(os.path.abspath(__file__))
START = datetime.datetime(2024, 6, 3, 8, 0, tzinfo=datetime.timezone.utc)


def stamp(t):
    return t.strftime("%Y-%m-%d %H:%M:%S+00")


def main():
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(HERE, "..", "gen_synthetic.py"), tmp,
                        "--only", "test"], check=True, stdout=subprocess.DEVNULL)
        rows = list(csv.DictReader(open(os.path.join(tmp, "test.csv"))))
    by_user = {}
    for r in rows:
        by_user.setdefault(int(r["user_id"]), []).append(r)
    events, impressions = [], []
    for user in sorted(by_user)[:USERS]:
        imps = by_user[user]
        t = START + datetime.timedelta(minutes=rng.randrange(0, 600))
        for k, item in enumerate(imps[0]["history"].strip("{}").split(",")):
            # 2-10 minutes apart; a break of 2-8 hours (a new session) before about 1 in 12
            gap = rng.randrange(7200, 28800) if rng.random() < 1 / 12 else rng.randrange(120, 600)
            t += datetime.timedelta(seconds=gap)
            events.append((user, int(item), t))
        t += datetime.timedelta(minutes=5)
        for r in imps:
            t += datetime.timedelta(minutes=1)
            clicked = r["clicked"] == "1"
            impressions.append((user, int(r["ad_id"]), t, clicked))
            if clicked:
                events.append((user, int(r["ad_id"]), t + datetime.timedelta(seconds=20)))
    with open(os.path.join(HERE, "events.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["user_id", "item_id", "ts"])
        w.writerows((u, i, stamp(t)) for u, i, t in events)
    with open(os.path.join(HERE, "impressions.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["user_id", "ad_id", "ts", "clicked"])
        w.writerows((u, a, stamp(t), "t" if c else "f") for u, a, t, c in impressions)
    print("wrote %d events and %d impressions of %d users" % (len(events), len(impressions), USERS))


if __name__ == "__main__":
    main()
