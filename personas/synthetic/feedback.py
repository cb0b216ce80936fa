"""Feedback: NPS surveys, CSAT after support tickets and product reviews after orders.

Scores centre on each customer's satisfaction, drawn around their persona's, and response rates
differ by persona, so missing feedback is itself informative, as in reality.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from personas.synthetic.calendar import DAY, Calendar
from personas.synthetic.columns import labels
from personas.synthetic.sampling import segments

# fmt: off
_COMMENTS = {
    "nps": (
        (6, ("Too many problems lately.", "Would not recommend.", "Service has gone downhill.",
             "")),
        (8, ("It is fine.", "Okay prices, okay service.", "", "")),
        (10, ("Love shopping here!", "Great service every time.", "Always recommend you.", "")),
    ),
    "csat": (
        (2, ("My issue was not solved.", "Slow answer.", "")),
        (3, ("Took a while but okay.", "")),
        (5, ("Quick and helpful.", "Thanks for the help!", "")),
    ),
    "review": (
        (2, ("Poor quality, sent it back.", "Did not match the description.", "")),
        (3, ("Average product.", "Does the job.", "")),
        (5, ("Excellent quality.", "Exactly as described.", "Great value.", "")),
    ),
}
# fmt: on


def draw_feedback(
    rng: np.random.Generator,
    cust: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    tickets: dict[str, np.ndarray],
    calendar: Calendar,
) -> dict[str, np.ndarray]:
    """NPS surveys of responders, CSAT after support tickets and product reviews after orders.

    Response rates differ by persona, so missing feedback is itself informative, as in reality.
    """
    end_ts = calendar.end_day * DAY - 1
    n = cust["persona"].size
    starts = np.cumsum(orders["count"]) - orders["count"]
    responder = ~cust["is_prospect"] & (rng.random(n) < cust["survey_rate"])
    owner, _ = segments(np.where(responder, 1 + (rng.random(n) < 0.3), 0))
    after = starts[owner] + rng.integers(0, np.maximum(orders["count"][owner], 1))
    nps_ts = orders["ts"][after] + rng.integers(2 * DAY, 20 * DAY, owner.size)
    nps = np.clip(np.round(rng.normal(cust["nps"][owner], 1.2)), 0, 10)
    nps_owner = owner
    answered = rng.random(tickets["owner"].size) < 0.6
    csat_owner = tickets["owner"][answered]
    csat_ts = tickets["ts"][answered] + rng.integers(3600, 2 * DAY, csat_owner.size)
    csat = np.clip(np.round(rng.normal(cust["csat"][csat_owner], 0.7)), 1, 5)
    reviewed = rng.random(orders["ts"].size) < 0.12 * cust["survey_rate"][orders["owner"]]
    review_owner = orders["owner"][reviewed]
    review_ts = orders["ts"][reviewed] + rng.integers(3 * DAY, 20 * DAY, review_owner.size)
    review = np.clip(np.round(rng.normal(cust["csat"][review_owner] + 0.2, 0.9)), 1, 5)
    kind = np.repeat([0, 1, 2], [nps_owner.size, csat_owner.size, review_owner.size])
    score = np.concatenate([nps, csat, review])
    ts = np.concatenate([nps_ts, csat_ts, review_ts])
    keep = ts <= end_ts  # surveys answered after the export window are not in it
    comment = np.full(kind.size, "", dtype=object)
    for k, name in enumerate(("nps", "csat", "review")):
        for lo, (top, texts) in zip(
            (-1, *(t for t, _ in _COMMENTS[name])), _COMMENTS[name], strict=False
        ):
            mask = (kind == k) & (score > lo) & (score <= top)
            comment[mask] = np.array(texts, dtype=object)[rng.integers(0, len(texts), mask.sum())]
    order = np.argsort(ts[keep], kind="stable")
    return {
        "owner": np.concatenate([nps_owner, csat_owner, review_owner])[keep][order],
        "ts": ts[keep][order],
        "kind": kind[keep][order],
        "score": score[keep][order],
        "comment": comment[keep][order],
    }


def feedback_table(feedback: dict[str, np.ndarray], ids: pa.Array) -> pa.Table:
    """Survey answers in export shape; an empty comment is written as a null."""
    kinds = ("nps", "csat", "review")
    comment = feedback["comment"]
    return pa.table(
        {
            "customer_id": ids.take(pa.array(feedback["owner"])),
            "ts": pa.array(feedback["ts"], pa.timestamp("s")),
            "kind": labels(kinds, feedback["kind"]),
            "score": pa.array(feedback["score"].astype(np.int64)),
            "scale_max": pa.array(np.array([10, 5, 5])[feedback["kind"]]),
            "comment": pa.array(comment.astype(str), mask=comment == ""),
        }
    )
