"""din-train: train a model on rows of a PostgreSQL query and store it with din_import
(docs/TRAINING.md). The per-epoch validation AUC and GAUC are din's own aggregates over
din_score of the model just trained, imported under a temporary name and rolled back."""

import argparse
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from . import core

REQUIRED = ("history", "ad_id", "label")
OPTIONAL = ("context", "dense", "history_time", "user_id")
VALID_TABLE = "din_train_valid"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="din-train",
        description="Train a din model (base, din, dien) from SQL queries and store it with "
                    "din_import. Query columns: history bigint[], ad_id bigint, label "
                    "(boolean or 0/1), optional context bigint[], dense float8[], "
                    "history_time timestamptz[], user_id bigint (for GAUC).")
    p.add_argument("--dsn", default="", help="libpq connection string (default: PG* variables)")
    p.add_argument("--train", required=True, metavar="SQL", help="query of the training rows")
    p.add_argument("--valid", required=True, metavar="SQL", help="query of the validation rows")
    p.add_argument("--items", metavar="SQL",
                   help="query of the items table: item id, then one bigint column per "
                        "attribute (each attribute becomes a field named as its column)")
    p.add_argument("--context-names", metavar="A,B",
                   help="field names of the context elements (default context0, context1, ...)")
    p.add_argument("--arch", default="din",
                   help="base | din | dien (dsin and bst are not supported yet)")
    p.add_argument("--model", help="name to store the model under with din_import")
    p.add_argument("--replace", action="store_true", help="replace an existing model")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the model file here instead of importing it")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dim", type=int, default=8, help="embedding width of every field")
    p.add_argument("--max-len", type=int, default=20, help="behaviours kept (the most recent)")
    p.add_argument("--attention", default="80,40", help="attention unit layer widths")
    p.add_argument("--attention-activation", default="dice", choices=sorted(core.ACTIVATIONS))
    p.add_argument("--tower", default="200,80", help="tower layer widths")
    p.add_argument("--tower-activation", default="prelu", choices=sorted(core.ACTIVATIONS))
    p.add_argument("--mba", type=float, default=0.0, metavar="LAMBDA",
                   help="mini-batch aware L2 on the embeddings used by each batch, row j "
                        "scaled by 1/n_j")
    p.add_argument("--l2", type=float, default=0.0, metavar="LAMBDA",
                   help="plain L2 on every embedding row at every step")
    p.add_argument("--dropout", type=float, default=0.0, metavar="P",
                   help="drop each behaviour and context id of a training row with probability P")
    p.add_argument("--aux-loss", type=float, default=0.0, metavar="ALPHA",
                   help="DIEN's auxiliary loss weight (dien only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--tolerance", type=float, default=1e-5,
                   help="largest relative difference allowed between din_score and the "
                        "trainer's prediction on a validation row before storing")
    p.add_argument("--predictions", metavar="FILE",
                   help="write the trainer's eval-mode prediction of each validation row "
                        "(CSV: row, in the validation query's order, from 1; prediction)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    if (a.model is None) == (a.output is None):
        p.error("give one of --model NAME (store with din_import) or -o FILE")
    if a.arch in core.NOT_YET:
        p.error("architecture %s cannot be trained by din-train yet (supported: %s)"
                % (a.arch, ", ".join(core.SUPPORTED)))
    if a.arch not in core.SUPPORTED:
        p.error("unknown architecture %s (supported: %s)" % (a.arch, ", ".join(core.SUPPORTED)))
    if a.aux_loss and a.arch != "dien":
        p.error("--aux-loss needs --arch dien")
    return a


def widths(text):
    return [int(x) for x in text.split(",") if x.strip()]


def columns(cur, query):
    cur.execute("SELECT * FROM (%s) q LIMIT 0" % query)
    names = [d[0] for d in cur.description]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise SystemExit("din-train: the query lacks the column%s %s (needs %s; optional %s)"
                         % ("s" if len(missing) > 1 else "", ", ".join(missing),
                            ", ".join(REQUIRED), ", ".join(OPTIONAL)))
    return [c for c in REQUIRED + OPTIONAL if c in names]


def fetch(cur, sql, cols):
    """Rows as dicts of the columns Python needs (history_time is used by din only)."""
    want = [c for c in cols if c != "history_time"]
    cur.execute("SELECT %s FROM %s" % (", ".join(want), sql))
    return [dict(zip(want, r)) for r in cur.fetchall()]


def score_sql(cols, model_param="%(m)s"):
    def col(c):
        return c if c in cols else "NULL"
    return ("din_score(history, ad_id, %s, %s, %s, %s)"
            % (model_param, col("context"), col("dense"), col("history_time")))


def evaluate(conn, binary, data, cols, tmp_name):
    """(AUC, GAUC or None, rows) of din_score in SQL over the validation table, with the model
    imported under tmp_name in a transaction that is rolled back."""
    gauc = "gauc(user_id, p, label)" if "user_id" in cols else "NULL"
    user = ", user_id" if "user_id" in cols else ""
    with conn.cursor() as cur:
        cur.execute("SELECT din_import(%(m)s, %(d)s, true)",
                    {"m": tmp_name, "d": binary(data)})
        cur.execute("SELECT auc(p, label), %s, count(*) FROM (SELECT %s AS p, label::int AS "
                    "label%s FROM %s) s" % (gauc, score_sql(cols), user, VALID_TABLE),
                    {"m": tmp_name})
        row = cur.fetchone()
    conn.rollback()
    return row


def sql_scores(cur, cols, name):
    cur.execute("SELECT %s FROM %s ORDER BY din_row" % (score_sql(cols), VALID_TABLE),
                {"m": name})
    return np.array([r[0] for r in cur.fetchall()], np.float64)


def fmt(x):
    return "n/a" if x is None else "%.4f" % x


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import psycopg2
    except ImportError:
        raise SystemExit("din-train: needs psycopg2 (Debian package python3-psycopg2)")
    if a.threads:
        torch.set_num_threads(a.threads)
    log = lambda msg: print("din-train: " + msg, file=sys.stderr, flush=True)  # noqa: E731

    conn = psycopg2.connect(a.dsn)
    cur = conn.cursor()
    train_cols = columns(cur, a.train)
    cols = columns(cur, a.valid)
    # The validation rows once, numbered, so the trainer's predictions and din_score meet row
    # by row; a temporary table vanishes with the session.
    cur.execute("CREATE TEMP TABLE %s AS SELECT row_number() OVER () AS din_row, q.* "
                "FROM (%s) q" % (VALID_TABLE, a.valid))
    train_rows = fetch(cur, "(%s) q" % a.train, train_cols)
    valid_rows = fetch(cur, "%s ORDER BY din_row" % VALID_TABLE, cols)
    items, attr_names = None, []
    if a.items:
        cur.execute(a.items)
        attr_names = [d[0] for d in cur.description][1:]
        items = {int(r[0]): [int(x) for x in r[1:]] for r in cur.fetchall()}
    conn.commit()
    if not train_rows:
        raise SystemExit("din-train: the training query returned no row")

    torch.manual_seed(a.seed)
    names = a.context_names.split(",") if a.context_names else None
    try:
        enc = core.Encoder(train_rows, a.max_len, items, attr_names, names)
        valid = enc.encode(valid_rows)
        cfg = core.make_config(a.arch, enc, a.dim, widths(a.attention), a.attention_activation,
                               widths(a.tower), a.tower_activation)
        model = core.build_model(cfg, enc)
        trainer = core.Trainer(model, enc, core.Options(a.epochs, a.batch_size, a.lr, a.mba,
                                                        a.l2, a.dropout, a.aux_loss, a.seed))
    except ValueError as e:
        raise SystemExit("din-train: %s" % e)
    log("%d training rows, %d validation rows; %s" % (
        len(enc.train), len(valid),
        ", ".join("%s %d ids" % (n, len(v)) for n, v in enc.fields())))

    tmp_name = "din_train_%d" % os.getpid()
    for epoch in range(1, a.epochs + 1):
        start = time.time()
        total = count = 0.0
        bar = tqdm(trainer.batches(), desc="epoch %d/%d" % (epoch, a.epochs), unit="batch",
                   disable=a.quiet, file=sys.stderr, leave=False)
        for idx in bar:
            loss = trainer.step(idx)
            total += loss * len(idx)
            count += len(idx)
            bar.set_postfix(loss="%.4f" % (total / count), refresh=False)
        bar.close()
        auc, gauc, n = evaluate(conn, psycopg2.Binary, core.model_bytes(model, cfg), cols,
                                  tmp_name)
        log("epoch %d: train loss %.4f, validation AUC %s GAUC %s (din_score in SQL, %d rows), "
            "%.1f s" % (epoch, total / count, fmt(auc), fmt(gauc), n, time.time() - start))

    # The model as stored; din_score must give the trainer's predictions before it is kept.
    data = core.model_bytes(model, cfg)
    mine = core.predict(model, valid)
    if a.predictions:
        with open(a.predictions, "w") as f:
            f.write("row,prediction\n")
            for i, p in enumerate(mine, 1):
                f.write("%d,%.17g\n" % (i, p))
    name = a.model or tmp_name
    cur.execute("SELECT din_import(%s, %s, %s)", (name, psycopg2.Binary(data), a.replace))
    version = cur.fetchone()[0]
    diff = core.relative_difference(sql_scores(cur, cols, name), mine)
    log("din_score against the trainer on %d validation rows: max relative difference %.2g"
        % (len(mine), diff))
    if not diff <= a.tolerance:
        conn.rollback()
        raise SystemExit("din-train: din_score differs from the trainer by %.2g (> %g); "
                         "nothing stored" % (diff, a.tolerance))
    if a.output:
        conn.rollback()
        with open(a.output, "wb") as f:
            f.write(data)
        log("wrote %s (%d bytes)" % (a.output, len(data)))
    else:
        conn.commit()
        log("stored model %s version %d (%s, %d bytes)" % (name, version, a.arch, len(data)))
    conn.close()
    return 0
