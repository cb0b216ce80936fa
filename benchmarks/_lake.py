"""The synthetic lake the benchmarks share: generated and ingested once, then reused.

``PREPARE_LAKE`` runs in a child process (``python -c PREPARE_LAKE raw lake customers``) so its
cost and memory never count against the stage being measured; it prints the lake's counts.
"""

PREPARE_LAKE = r"""
import glob, json, os, sys
os.environ.setdefault("PERSONAS_PII_KEY", "bench-only")
from personas.synthetic.retailer import generate
from personas.ingest.batch import ingest
raw, lake, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if not os.path.exists(os.path.join(raw, "meta.json")):
    generate(raw, customers=n, seed=0)
if not any(  # a lake of either layout (Delta tables, or the earlier _manifest/)
    os.path.exists(os.path.join(lake, *d)) for d in (("_manifest",), ("transactions", "_delta_log"))
):
    ingest(sorted(glob.glob(os.path.join(raw, "*.gz"))), "demo", lake)
from personas.lake import Lake
print(json.dumps(Lake(lake).counts()))
"""
