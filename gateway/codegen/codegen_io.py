"""What gen_search_params.py and gen_compartment.py share: their command line, the pinned
definitions' version and the --check drift comparison (used by the gateway_*_drift ctests)."""
import json
import sys


def parse_args():
    """SRC_JSON OUTPUT_CPP [--check] -> (src, dst, check)."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src, dst = args
    return src, dst, "--check" in sys.argv


def package_version(src):
    """The version in the package.json of the npm package SRC belongs to (…/dist/… path)."""
    try:
        pkg = json.load(open(src.rsplit("/dist/", 1)[0] + "/package.json", encoding="utf-8"))
        return pkg.get("version", "unknown")
    except OSError:
        return "unknown"


def check_or_write(text, dst, check):
    """--check: exit 1 if DST differs from TEXT. Otherwise write TEXT to DST."""
    if check:
        try:
            old = open(dst, encoding="utf-8").read()
        except OSError:
            old = ""
        if old != text:
            print(f"{dst} is out of date: run the kakehashi_regen_gateway target", file=sys.stderr)
            sys.exit(1)
        return
    open(dst, "w", encoding="utf-8").write(text)
