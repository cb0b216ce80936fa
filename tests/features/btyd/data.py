"""Published figures and data loaders shared by the BTYD tests.

The real-data tests reproduce published figures on Fader & Hardie's CDNOW 1/10 sample and run a
calibration/holdout check on UCI Online Retail; they read ``../shared/data`` and skip only when
that folder is absent.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pandas as pd
import pytest

from personas.features.btyd import BetaGeoModel
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA

# Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2):
# BG/NBD on the 2,357 CDNOW sample customers, weeks 1-39 (1997-01-01 .. 1997-09-30).
FHL_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
FHL_BGNBD_LL = -9582.4
# Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": the 946 CDNOW sample
# customers with repeat purchases in weeks 1-39 (lifetimes' documentation reports the same
# p, q, v for its cdnow_customers_summary_with_transactions.csv, which is that data set).
FH_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}
FH_GAMMA_GAMMA_LL = -4055.9
# FHL 2005 calibration ends after week 39: purchases up to and including 1997-09-30 count, so
# the exclusive cut-off is 1997-10-01. Holdout: weeks 40-78, up to and including 1998-06-30.
CDNOW_CAL_END, CDNOW_OBS_END = "1997-10-01", "1998-07-01"

TRUE_BGNBD = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}


def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"../shared/data not found: {DATA} is absent, real-data tests cannot run")
    return DATA


def load_cdnow() -> pd.DataFrame:
    path = data_dir() / "cdnow" / "CDNOW_sample.txt"
    tx = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "n_cds", "amount"],
        dtype={"master_id": str, "customer_id": str, "date": str},
    )
    tx["ts"] = pd.to_datetime(tx["date"], format="%Y%m%d", utc=True)
    return tx


def load_online_retail() -> pd.DataFrame:
    files = sorted(glob.glob(str(data_dir() / "uci-online-retail" / "by-day" / "*.csv.gz")))
    assert len(files) == 305
    raw = pd.concat(
        (pd.read_csv(f, dtype={"InvoiceNo": str, "StockCode": str}) for f in files),
        ignore_index=True,
    )
    raw["InvoiceDate"] = pd.to_datetime(raw["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    raw["CustomerID"] = raw["CustomerID"].astype("Int64")
    amount = raw["Quantity"] * raw["UnitPrice"]
    keep = raw["CustomerID"].notna() & ~raw["InvoiceNo"].str.startswith("C") & (amount > 0)
    return pd.DataFrame(
        {
            "customer_id": raw.loc[keep, "CustomerID"].astype(str),
            "ts": raw.loc[keep, "InvoiceDate"].dt.tz_localize("UTC"),
            "amount": amount[keep],
        }
    )


def fitted(params: dict[str, float]) -> BetaGeoModel:
    model = BetaGeoModel()
    model.params_ = dict(params)
    return model


def transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    ids, ts, amount = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "ts": pd.to_datetime(list(ts), utc=True),
            "amount": amount,
        }
    )
