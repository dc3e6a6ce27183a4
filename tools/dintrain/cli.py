"""din-train: train a model on rows of a PostgreSQL query and store it with din_import
(docs/TRAINING.md). The per-epoch validation AUC and GAUC are din's own aggregates over
din_score of the model just trained, imported under a temporary name and rolled back."""

import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from . import config, core, data

REQUIRED = ("history", "ad_id", "label")
OPTIONAL = ("context", "dense", "history_time", "at", "user_id")
VALID_TABLE = "din_train_valid"
TIME_COLUMNS = ("history_time", "at")


def column_sql(column, max_len):
    """What Python reads of a column: of a history only the tail din keeps, times as int64
    microseconds as din reads them (an epoch shift changes no gap)."""
    tail = "%s[greatest(cardinality(%s) - %d, 0) + 1:]"
    if column == "history":
        return (tail + " AS history") % ("history", "history", max_len)
    if column == "history_time":
        # slice first: a filter on the unnested rows would read the whole array per element
        return ("(SELECT array_agg((extract(epoch FROM t) * 1000000)::bigint ORDER BY i) "
                "FROM unnest(" + tail + ") WITH ORDINALITY u(t, i)) AS history_time") % (
                    "history_time", "history_time", max_len)
    if column == "at":
        return "(extract(epoch FROM at) * 1000000)::bigint AS at"
    return column


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="din-train",
        description="Train a din model (base, din, dien, dsin, bst) from SQL queries and store "
                    "it with din_import. Query columns: history bigint[], ad_id bigint, label "
                    "(boolean or 0/1), optional context bigint[], dense float8[], "
                    "history_time timestamptz[] and at timestamptz (dsin; bst with time "
                    "positions), user_id bigint (for GAUC).")
    p.add_argument("--dsn", default="", help="libpq connection string (default: PG* variables)")
    p.add_argument("--train", required=True, metavar="SQL", help="query of the training rows")
    p.add_argument("--valid", required=True, metavar="SQL", help="query of the validation rows")
    p.add_argument("--items", metavar="SQL",
                   help="query of the items table: item id, then one bigint column per "
                        "attribute (each attribute becomes a field named as its column)")
    p.add_argument("--context-names", metavar="A,B",
                   help="field names of the context elements (default context0, context1, ...)")
    p.add_argument("--config", metavar="FILE",
                   help="a model config in din's format (docs/FORMAT.md); its keys replace "
                        "din-train's defaults, the rows decide the fields' rows")
    p.add_argument("--arch", help="base | din | dien | dsin | bst (default: the config "
                                  "file's, else din)")
    p.add_argument("--model", help="name to store the model under with din_import")
    p.add_argument("--replace", action="store_true", help="replace an existing model")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the model file here instead of importing it")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--keep-best", action="store_true",
                   help="keep the epoch with the best validation AUC, not the last")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dim", type=int, default=8, help="embedding width of every field")
    p.add_argument("--max-len", type=int, default=20, help="behaviours kept (the most recent)")
    p.add_argument("--attention", default="80,40", help="attention unit layer widths")
    p.add_argument("--attention-activation", default="dice", choices=sorted(config.ACTIVATIONS))
    p.add_argument("--tower", default="200,80", help="tower layer widths")
    p.add_argument("--tower-activation", default="prelu", choices=sorted(config.ACTIVATIONS))
    p.add_argument("--heads", type=int, default=2,
                   help="attention heads of the dsin extractor and the bst transformer")
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
    a.file = {}
    if a.config:
        try:
            with open(a.config) as f:
                a.file = json.load(f)
        except (OSError, ValueError) as e:
            p.error("cannot read the config file %s: %s" % (a.config, e))
        if not isinstance(a.file, dict):
            p.error("the config file %s does not hold a JSON object" % a.config)
    arch = a.file.get("architecture")
    if a.arch and arch and a.arch != arch:
        p.error("--arch %s, but the config file has architecture %s" % (a.arch, arch))
    a.arch = a.arch or arch or "din"
    if a.arch not in config.SUPPORTED:
        p.error("unknown architecture %s (supported: %s)"
                % (a.arch, ", ".join(config.SUPPORTED)))
    a.max_len = a.file.get("max_len", a.max_len)
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


def fetch(cur, sql, cols, times, max_len):
    """Rows as dicts of the columns Python needs; history_time and at only when the
    architecture reads them."""
    want = [c for c in cols if times or c not in TIME_COLUMNS]
    cur.execute("SELECT %s FROM %s" % (", ".join(column_sql(c, max_len) for c in want), sql))
    return [dict(zip(want, r)) for r in cur.fetchall()]


def score_sql(cols, model_param="%(m)s"):
    def col(c):
        return c if c in cols else "NULL"
    return ("din_score(history, ad_id, %s, %s, %s, %s, %s)"
            % (model_param, col("context"), col("dense"), col("history_time"), col("at")))


def evaluate(conn, binary, data_bytes, cols, tmp_name):
    """(AUC, GAUC or None, rows) of din_score in SQL over the validation table, with the model
    imported under tmp_name in a transaction that is rolled back."""
    gauc = "gauc(user_id, p, label)" if "user_id" in cols else "NULL"
    user = ", user_id" if "user_id" in cols else ""
    with conn.cursor() as cur:
        cur.execute("SELECT din_import(%(m)s, %(d)s, true)",
                    {"m": tmp_name, "d": binary(data_bytes)})
        cur.execute("SELECT auc(p, label), %s, count(*) FROM (SELECT %s AS p, label::int AS "
                    "label%s FROM %s) s" % (gauc, score_sql(cols), user, VALID_TABLE),
                    {"m": tmp_name})
        row = cur.fetchone()
    conn.rollback()
    return row


def check_config(conn, psycopg2, data_bytes, tmp_name):
    """din_import of the untrained model, rolled back: din judges the config before any
    training."""
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT din_import(%s, %s, true)", (tmp_name, psycopg2.Binary(data_bytes)))
        except psycopg2.Error as e:
            raise SystemExit("din-train: din refuses the model's config: %s"
                             % (e.diag.message_primary or e))
        finally:
            conn.rollback()


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
    if a.model and not a.replace:
        cur.execute("SELECT count(*) FROM din_models WHERE name = %s", (a.model,))
        if cur.fetchone()[0]:
            raise SystemExit('din-train: model "%s" already exists; give --replace to replace '
                             'it' % a.model)
    train_cols = columns(cur, a.train)
    cols = columns(cur, a.valid)
    times = config.reads_time(a.arch, a.file)
    if times:
        need = ["history_time"] + (["at"] if a.arch == "bst" else [])
        for what, have in (("training", train_cols), ("validation", cols)):
            if not set(need) <= set(have):
                raise SystemExit("din-train: %s; the %s query needs the column%s %s"
                                 % (times, what, "s" if len(need) > 1 else "",
                                    " and ".join(need)))
    # The validation rows once, numbered, so the trainer's predictions and din_score meet row
    # by row; a temporary table vanishes with the session.
    cur.execute("CREATE TEMP TABLE %s AS SELECT row_number() OVER () AS din_row, q.* "
                "FROM (%s) q" % (VALID_TABLE, a.valid))
    start = time.time()
    train_rows = fetch(cur, "(%s) q" % a.train, train_cols, times, a.max_len)
    valid_rows = fetch(cur, "%s ORDER BY din_row" % VALID_TABLE, cols, times, a.max_len)
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
        enc = data.Encoder(train_rows, a.max_len, items, attr_names, names,
                           times=bool(times), ordered=a.arch == "dsin")
        valid = enc.encode(valid_rows, "validation row")
        cfg = config.make_config(a.arch, enc, a.dim, widths(a.attention),
                                 a.attention_activation, widths(a.tower), a.tower_activation,
                                 a.heads, a.file)
        model = config.build_model(cfg, enc)
        trainer = core.Trainer(model, enc, core.Options(a.epochs, a.batch_size, a.lr, a.mba,
                                                        a.l2, a.dropout, a.aux_loss, a.seed))
    except ValueError as e:
        raise SystemExit("din-train: %s" % e)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        # din would name the fault; the module only stumbles on it (a key missing or of the
        # wrong type), before din can see the file
        raise SystemExit("din-train: cannot build a model of this config (%s: %s); see "
                         "docs/FORMAT.md" % (type(e).__name__, e))
    del train_rows, valid_rows
    log("%d training rows, %d validation rows (read and encoded in %.1f s); %s" % (
        len(enc.train), len(valid), time.time() - start,
        ", ".join("%s %d ids" % (n, len(v)) for n, v in enc.fields())))

    tmp_name = "din_train_%d" % os.getpid()
    check_config(conn, psycopg2, core.model_bytes(model, cfg), tmp_name)
    best = None
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
        seconds = time.time() - start
        auc, gauc, n = evaluate(conn, psycopg2.Binary, core.model_bytes(model, cfg), cols,
                                tmp_name)
        log("epoch %d: train loss %.4f, validation AUC %s GAUC %s (din_score in SQL, %d rows), "
            "%.1f s training (%.0f rows/s)" % (epoch, total / count, fmt(auc), fmt(gauc), n,
                                               seconds, count / seconds))
        if a.keep_best and (best is None or (auc or 0) > best[1]):
            best = (epoch, auc or 0, copy.deepcopy(model.state_dict()))
    if best is not None:
        model.load_state_dict(best[2])
        log("keeping epoch %d (validation AUC %.4f)" % best[:2])

    # The model as stored; din_score must give the trainer's predictions before it is kept.
    data_bytes = core.model_bytes(model, cfg)
    mine = core.predict(model, valid)
    if a.predictions:
        with open(a.predictions, "w") as f:
            f.write("row,prediction\n")
            for i, p in enumerate(mine, 1):
                f.write("%d,%.17g\n" % (i, p))
    name = a.model or tmp_name
    cur.execute("SELECT din_import(%s, %s, %s)", (name, psycopg2.Binary(data_bytes), a.replace))
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
            f.write(data_bytes)
        log("wrote %s (%d bytes)" % (a.output, len(data_bytes)))
    else:
        conn.commit()
        log("stored model %s version %d (%s, %d bytes)" % (name, version, a.arch,
                                                            len(data_bytes)))
    conn.close()
    return 0
