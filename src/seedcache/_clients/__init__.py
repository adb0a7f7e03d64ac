"""Between HTTP libraries and the request path: the transport every adapter shares
(``_transport``), one module per library family (``_httpx``, ``_httpx2``), where live
requests go (``_upstream``), and how a cache goes under an SDK client (``_wrap``)."""
