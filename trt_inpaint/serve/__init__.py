"""``trt-inpaint serve``: an HTTP service around one ``Inpainter`` (the ``serve`` extra: FastAPI + uvicorn).

    requests -> limits, sniffing -> prepare (worker threads) -> queue -> ONE inference thread gathers a batch
    -> Inpainter.run (stage-major, the pool within its budget) -> encode (worker threads) -> responses

Files, one job each: ``config`` (options and their defaults), ``sniff`` (formats and sizes from headers),
``limits`` (body size), ``auth`` (API key), ``problems`` (errors to HTTP), ``metrics`` (Prometheus),
``batcher`` (queue + inference thread), ``schemas`` (request/response models), ``uploads`` and ``kserve``
(request bodies), ``service`` (one inpaint request end to end), ``routes_*`` (the endpoints), ``app``
(assembly), ``server`` (uvicorn with draining), ``cli``. The page is static files in ``page/``.

This package depends on the runtime; the runtime knows nothing of it.
"""
