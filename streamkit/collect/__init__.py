"""``streamkit collect``: take messages in over HTTP and write them to any output URI.

Split in three so each part is small and testable: ``server`` (aiohttp routes and checks),
``writer`` (the one task that batches requests into the output and answers them), ``metrics``
(counters and the Prometheus text). ``service.serve`` wires them to a streamer and runs until a
signal, then drains. aiohttp is an optional extra (``pip install -e '.[collect]'``): only this
package imports it, and only when ``collect`` runs.
"""
