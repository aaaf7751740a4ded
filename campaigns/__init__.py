"""The campaigns rooms: what is sent, to whom, when, and what came of it.

Four sub-rooms, each a package:

- :mod:`campaigns.content`: snippets, imports, weekly assembly, rendering, preflight,
  preview: what an issue says.
- :mod:`campaigns.delivery`: the delivery ledger (exactly once per reader), the send loop,
  throttling and the providers (outbox, SendGrid, SMTP).
- :mod:`campaigns.tracking`: provider events (opens, clicks, bounces, complaints) and their
  effects on deliveries and subscribers; erasure of a person's tracking data.
- :mod:`campaigns.reports`: figures per campaign and over time, and their charts.

Beside them, the campaign's life cycle:

- ``models``: the tables (snippet, campaign, campaign_snippet, campaign_log, delivery,
  delivery_batch, tracking_event, campaign_archive_exclusion).
- ``workflow``: the state machine; every status change is a logged compare-and-set.
- ``weekly_plan``: the weekly send slot in local wall time, ISO weeks, time zones.
- ``actions``: what people do with campaigns (create, show, schedule, pause, resume,
  cancel); the CLI and the HTTP API both call these.
- ``archive``: the public archive of sent issues (listing, each issue's page, Atom feed)
  and leaving a campaign out of it.
- ``jobs``: the scheduler's job bodies (weekly assembly, dispatch, housekeeping) as plain
  functions of (settings, now).
- ``demo``: this week's issue end to end on a throwaway SQLite database.

Imports point down: ``models``, ``workflow``, ``weekly_plan`` and ``actions`` use only the
ground floor (:mod:`newsletter`) and each other; the sub-rooms may use them (e.g. the one
campaign lookup, ``actions.get_campaign``); ``jobs`` and ``demo`` sit on top and use the
sub-rooms. The whole floor stands on :mod:`subscribers` (audiences, tracking's effects on
readers, the demo's sign-ups), which never imports it, and nothing here imports FastAPI,
typer or APScheduler: those are the doors' (``web``, ``cli``, ``scheduler``).
"""
