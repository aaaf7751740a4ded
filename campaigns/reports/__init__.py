"""Reports: how an issue did and how the list grows, as figures and charts.

- ``figures``: a campaign's counts and rates from the delivery ledger (people, not
  events), the warnings a sender must heed (complaint and bounce rates), its timeline of
  events per hour, and list growth per ISO week from the consent history; CSV and dicts
  for the doors.
- ``charts``: the timeline and the growth as fixed-size PNGs (matplotlib's Agg canvas).
"""
