"""The request path: one request in, a replayed take or a live recording out.

In the order a request meets them: ``_keys`` (the key, credentials left out by ``_wire``
and ``_redact``), ``_policy`` (what to do: a pure decision over plain data, with
``_modes`` and ``_freshness``), ``_core`` (the loop that carries the decision out),
``_flights`` (identical requests share one upstream call), ``_recording`` (a live answer
kept until it completes, then stored), ``_outcome`` (what the cache did, told to the
caller). ``_backends`` watches fingerprints as they arrive; ``_explain`` and ``_nearest``
word a miss. Nothing here reads reports: the path only points down, to ``_takes`` and
``_stores``.
"""
