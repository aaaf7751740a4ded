"""Several senders on PostgreSQL (issue 17 point 1): ``NEWSLETTER_SENDER=queue``.

A send is prepared as an inline one is (preflight, rendering, queueing the ledger; see
campaigns.delivery.sending) and then handed over: the campaign's queued delivery ids are
cut into fixed id blocks of ``worker_batch_size``, one procrastinate job each, which
``newsletter worker`` processes on any number of machines take.

- ``handover``: prepare a run and queue its blocks; follow a queued send (``--wait``).
- ``batch_send``: what a worker does with one block: the inline send loop
  (campaigns.delivery.send_loop.SendLoop), bounded to the block's ids, under a lease of
  the block, paced by the shared limiter, finishing the campaign when the last row goes.
- ``shared_rate``: one provider rate limit for every worker, a row in PostgreSQL.
- ``queue``: the only module that imports procrastinate (the adapter): the task, deferring
  blocks, the worker with its sweep of stalled jobs.

Exactly-once holds as inline: the ledger is the truth and a worker sends only rows still
``queued`` in its block. A block is one job with a procrastinate ``lock`` (never two at
once) and, besides, the lease ``send:<campaign>:<block>`` (newsletter.leases), so even a job
retried while its first worker still lives cannot run twice at the same time. A worker
killed with SIGKILL stops sending heartbeats; after ``worker_stalled_seconds`` another
worker's sweep puts its job back to ``todo``, the lease of a dead process on this host is
taken at once (on another host, at expiry), and the block goes on from its queued rows:
at most the provider request that was in flight is sent twice.
"""
