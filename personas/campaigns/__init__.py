"""Which message works for which persona: campaign exposure, response and uplift vs control.

A campaign contact (``events``, ``event_type = campaign_contact``) names its campaign, variant
and arm (treatment or control) in ``properties``; :mod:`.exposure` reads the contacts and their
outcomes from the lake, :mod:`.stats` holds the interval methods and :mod:`.uplift` the table
per campaign, variant and persona.
"""

from personas.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "contacts": "exposure",
        "measure": "uplift",
        "measure_run": "uplift",
        "uplift_table": "uplift",
        "newcombe": "stats",
        "wilson": "stats",
    },
    submodules=("exposure", "stats", "uplift"),
)
