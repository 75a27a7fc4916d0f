"""``streamkit collect``: take messages in over HTTP and write them to any output URI.

Split in small parts: ``asgi`` (the bare ASGI app: routes and checks), ``ndjson`` (request
bodies to rows), ``writer`` (the one task that batches requests into the output and answers
them), ``metrics`` (counters and the Prometheus text). ``service.serve`` wires them to a
streamer and uvicorn and runs until a signal, then drains. uvicorn and httptools are an optional
extra (``pip install -e '.[collect]'``): only this package imports them, and only when
``collect`` runs.
"""
