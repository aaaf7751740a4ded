"""Tracking: what providers tell us after sending, applied once to the ledger and the list.

- ``events``: our vocabulary, django-anymail's (:class:`EventKind`, :class:`RejectReason`)
  and :class:`NormalisedEvent`, the one shape every provider's webhook produces.
- ``effects``: storing each event once under its provider id and applying it, in bulk
  (a request may carry 100,000 events): what it says about the person (bounce,
  complaint, unsubscribe) handed to ``subscribers.lifecycle``, event by event.
- ``matching``: which delivery and which subscriber each event of a chunk is about.
- ``counters``: counters and times on the delivery rows, folded per row, set-based.
- ``people``: what events say about people (verdicts), told to ``subscribers.lifecycle``
  one by one in arrival order, with the soft-bounce rules' facts loaded per chunk.
- ``rowsets``: a chunk's rows as one JSON parameter the database unpacks.
- ``erasure``: a person's erasure across both rooms, scrubbing the provider events we
  stored as well.

Vendor payloads are read only by the provider's webhook module
(``campaigns.delivery.providers.sendgrid_events``).
"""
