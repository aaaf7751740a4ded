"""Delivery: a rendered campaign to every eligible reader, exactly once.

The ledger holds one row per (campaign, subscriber); a send moves rows from ``queued`` to
``sent``, ``failed`` or ``skipped`` in batches, one transaction each, so a crash repeats
at most the batches in flight.

- ``sending``: the entry points. ``send_campaign`` (preflight, render, queue, lease,
  provider, then the loop) and ``test_send`` (one marked copy, nothing recorded).
- ``send_loop``: :class:`SendLoop`, the loop in named steps, with its progress and
  report types.
- ``send_jobs``: the loop's jobs, their outcomes, one attempt, and a batch split into jobs.
- ``ledger``: queueing the audience (one ``INSERT ... SELECT``) and ``delivery_counts``.
- ``ledger_batches``: reading queued rows in keyset batches (re-checking who may still
  be mailed) and writing each batch's outcome back, set-based.
- ``throttle``: pacing (``send_rate_per_second``) and backoff with jitter.
- ``send_lease``: one sender per campaign at a time, across machines.
- ``recipient_links``: each reader's signed unsubscribe and preferences links, fast.
- ``providers``: the email services behind one interface.
- ``workers``: queue mode (``NEWSLETTER_SENDER=queue``, PostgreSQL, issue 17): a send
  handed to ``newsletter worker`` processes in blocks of the ledger, through procrastinate.
"""
