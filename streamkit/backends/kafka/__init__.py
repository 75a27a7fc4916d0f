"""The Kafka backend (``kafka://``) on librdkafka: ``streamer`` connects and hands out clients;
``config`` turns settings into client configuration; ``producer``, ``consumer``, ``positions``
(ends, seek by time) and ``identity`` (topic ids) wrap the clients; ``stats`` is the read-only
``stat`` collector."""

from streamkit.backends.kafka.streamer import KafkaStreamer, open_streamer

__all__ = ["KafkaStreamer", "open_streamer"]
