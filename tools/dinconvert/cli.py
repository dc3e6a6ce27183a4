"""Command line: din-convert deepctr-torch|torch-rechub --weights W --spec S
(-o OUT | --import DSN --model NAME [--replace]) [--items M]."""

import argparse
import json
import sys

from . import Refusal, deepctr_torch, safetensors, statedict, torch_rechub

LIBRARIES = {"deepctr-torch": deepctr_torch, "torch-rechub": torch_rechub}


def convert(library, weights, spec, items=None, notes=None):
    """(config, tensors) for a state_dict (name -> array) and a SPEC (dict); remarks for the
    user are appended to `notes`."""
    if library not in LIBRARIES:
        raise Refusal("library %r: expected deepctr-torch or torch-rechub" % library)
    if not isinstance(spec, dict):
        raise Refusal("SPEC must be a JSON object")
    if spec.get("library", library) != library:
        raise Refusal("SPEC library %r does not match the command's %r"
                      % (spec["library"], library))
    sd = statedict.StateDict(weights)
    result = LIBRARIES[library].convert(spec, sd, items)
    if notes is not None:
        notes.extend(sd.notes)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="din-convert",
        description="Write a din model file (docs/FORMAT.md) for a model trained with "
                    "DeepCTR-Torch or torch-rechub, so that din scores it exactly as the library "
                    "does. See docs/CONVERT.md.")
    ap.add_argument("library", choices=sorted(LIBRARIES))
    ap.add_argument("--weights", required=True, help="the state_dict: .npz, .pt or .pth")
    ap.add_argument("--spec", required=True, help="SPEC.json: what the constructor was given")
    ap.add_argument("-o", "--output", help="the din model file to write")
    ap.add_argument("--import", dest="dsn", metavar="DSN",
                    help="import into this database instead (libpq connection string; '' takes "
                         "PGHOST, PGDATABASE, ... from the environment); needs psycopg2")
    ap.add_argument("--model", help="with --import: the model's name in din")
    ap.add_argument("--replace", action="store_true",
                    help="with --import: replace an existing model (a new version)")
    ap.add_argument("--items", help="item -> attribute ids (.npy indexed by item id, or .csv)")
    args = ap.parse_args(argv)
    if (args.output is None) == (args.dsn is None):
        ap.error("give -o OUTPUT or --import DSN (one of them)")
    if (args.dsn is None) != (args.model is None) or (args.replace and args.dsn is None):
        ap.error("--import DSN and --model NAME go together (and --replace with them)")
    if args.dsn is not None:
        try:
            import psycopg2  # only here: writing a file needs no database driver
        except ImportError:
            print("din-convert: --import needs psycopg2 (Debian package python3-psycopg2); "
                  "or write a file with -o and import it with din_import", file=sys.stderr)
            return 1
    try:
        with open(args.spec) as f:
            spec = json.load(f)
        notes = []
        config, tensors = convert(args.library, statedict.load(args.weights), spec, args.items,
                                  notes)
        data = safetensors.encode(config, tensors,
                                  {"din.converted_from": "%s %s" % (args.library, spec["model"])})
    except Refusal as e:
        print("din-convert: refused: %s" % e, file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print("din-convert: %s" % e, file=sys.stderr)
        return 1
    if args.dsn is not None:
        try:
            version = import_model(psycopg2, args.dsn, args.model, data, args.replace)
        except psycopg2.Error as e:
            print("din-convert: import failed: %s" % str(e).strip(), file=sys.stderr)
            return 1
        where = "model %s version %d" % (args.model, version)
    else:
        with open(args.output, "wb") as f:
            f.write(data)
        where = args.output
    for note in notes:
        print("din-convert: note: %s" % note, file=sys.stderr)
    print("din-convert: wrote %s: %s, max_len %d, target %s, behaviour %s, context %s, dense %d"
          % (where, config["architecture"], config["max_len"], config["target"],
             config["behaviour"], config["context"], config["dense"]), file=sys.stderr)
    for f in config["fields"]:
        if "padding_id" in f:
            print("din-convert: padding_id %d on field %s: the library pads histories with it; "
                  "din %s a history holding it (pass only the real behaviours)"
                  % (f["padding_id"], f["name"], "refuses" if f.get("oov", "error") == "error"
                     else "gives a NOTICE for"), file=sys.stderr)
    switches = attention_switches(config)
    if switches:
        print("din-convert: attention: %s" % switches, file=sys.stderr)
    return 0


def import_model(psycopg2, dsn, name, data, replace):
    """din_import in one transaction (din validates the whole file first); the version."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT din_import(%s, %s, replace => %s)",
                        (name, psycopg2.Binary(data), replace))
            return cur.fetchone()[0]
    finally:
        conn.close()


# attention keys that say how the library treats padding and fields (docs/FORMAT.md)
ATTENTION_SWITCHES = ("type", "normalization", "units", "pool", "empty", "padding_row")


def attention_switches(config):
    """The attention block's switches as `key value, ...` (empty without the block)."""
    att = config.get("attention") or {}
    return ", ".join("%s %s" % (k, json.dumps(att[k])) for k in ATTENTION_SWITCHES if k in att)


def sql_inputs(library, spec):
    return LIBRARIES[library].sql_inputs(spec)
