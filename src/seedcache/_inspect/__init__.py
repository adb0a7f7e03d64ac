"""Looking at what a store holds, never on the request path.

``_catalog`` lists and counts entries for ``SeedCache`` and the CLI; ``_prefixes`` finds
one from a typed key prefix; ``_drift`` diffs takes and measures determinism;
``_fingerprints`` and ``_recheck`` tell which backends changed; ``_savings`` prices what
replaying saved; ``_overview`` and ``_overview_html`` gather all of it for
``seedcache report``.
"""
