"""Stream URIs: ``scheme://nodes/keys`` — the grammar of SeaStreamer's stream URLs.

Everything after the LAST ``/`` is a comma-separated list of stream keys (possibly empty);
everything between ``://`` and that ``/`` is the node list (``host[:port]`` pieces) or, for
``file``, a path, or for ``memory`` the name of a process-local broker.

Unlike SeaStreamer, file paths keep their case and spaces (no URL host normalisation), and
credentials (``user:pw@host``) are kept for the backend instead of being dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from streamkit.errors import UsageError
from streamkit.message import validate_stream_key

__all__ = [
    "DEFAULT_PORTS",
    "SCHEMES",
    "Node",
    "StreamUri",
    "parse_stream_uri",
    "parse_streamer_uri",
]

SCHEMES = ("stdio", "file", "redis", "rediss", "kafka", "memory")
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "kafka": 9092}


@dataclass(frozen=True, slots=True)
class Node:
    host: str
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class StreamUri:
    """A parsed stream (or streamer) URI.

    ``location`` is the raw text between ``://`` and the last ``/``: a file path for ``file``,
    a broker name for ``memory``, the node list otherwise.
    """

    scheme: str
    """One of ``SCHEMES``: it picks the backend (``streamkit.connect``)."""
    location: str
    """Between ``://`` and the last ``/``: the file path, the memory broker's name, or the
    nodes as written (credentials removed)."""
    keys: tuple[str, ...] = ()
    """The stream keys after the last ``/`` (comma-separated in the text)."""
    nodes: tuple[Node, ...] = ()
    """The hosts and ports of a redis/kafka URI (port None: the scheme's ``DEFAULT_PORTS``)."""
    username: str | None = None
    """From ``user:password@`` before the nodes (Redis ACL user, Kafka SASL user)."""
    password: str | None = field(default=None, repr=False)
    """Used to connect, never printed (``redacted``, and left out of ``repr``)."""
    has_key_list: bool = True
    """False for a streamer URI given without a ``/keys`` part."""

    @property
    def path(self) -> str:
        """The file path of a ``file://`` URI (``-`` is not special here)."""
        return self.location

    @property
    def tls(self) -> bool:
        """True for ``rediss://``: connect with TLS."""
        return self.scheme == "rediss"

    @property
    def key(self) -> str | None:
        """The single stream key, or None when the URI names none (``stdio:///``)."""
        if len(self.keys) > 1:
            raise UsageError(
                f"names {len(self.keys)} streams ({','.join(self.keys)}) where one output stream "
                "is needed",
                self.redacted(),
            )
        return self.keys[0] if self.keys else None

    def with_keys(self, keys: tuple[str, ...]) -> StreamUri:
        """The same streamer with ``keys`` as its stream keys (e.g. keys given apart from it)."""
        return StreamUri(
            self.scheme, self.location, keys, self.nodes, self.username, self.password, True
        )

    def redacted(self) -> str:
        """The URI as text with any password replaced by ``***`` (safe to print)."""
        location = self.location
        if self.username is not None or self.password is not None:
            cred = (self.username or "") + (":***" if self.password is not None else "")
            location = cred + "@" + ",".join(str(n) for n in self.nodes)
        suffix = "/" + ",".join(self.keys) if self.has_key_list else ""
        return f"{self.scheme}://{location}{suffix}"

    def __str__(self) -> str:
        return self.redacted()


def _split_scheme(text: str) -> tuple[str, str]:
    if "://" not in text:
        shown = _redact_text(text)
        hint = ""
        if text.endswith(".ss") or "/" in text:
            hint = f" (a file is written file://{shown}/KEY)"
        raise UsageError(
            f"not a stream URI: no '://' in {shown!r}; expected scheme://nodes/keys{hint}, "
            f"with scheme one of {', '.join(SCHEMES)}",
        )
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise UsageError(
            f"unknown scheme {scheme!r} in {_redact_text(text)!r}; "
            f"known schemes: {', '.join(SCHEMES)}"
        )
    return scheme, rest


def _parse_nodes(
    scheme: str, location: str, original: str
) -> tuple[tuple[Node, ...], str | None, str | None]:
    username = password = None
    if "@" in location:
        cred, location = location.rsplit("@", 1)
        user, sep, pw = cred.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    nodes: list[Node] = []
    for piece in location.split(","):
        piece = piece.strip()
        if not piece:
            continue
        host, port = piece, None
        if "/" in piece:
            raise UsageError(
                f"invalid node {piece!r}: nodes are host[:port]; the stream keys follow the "
                "last '/'",
                _redact_text(original),
            )
        if piece.startswith("["):  # [ipv6]:port
            end = piece.find("]")
            host, tail = piece[1:end], piece[end + 1 :]
            if tail.startswith(":"):
                port = _parse_port(tail[1:], piece, original)
        elif piece.count(":") == 1:
            host, port_text = piece.split(":")
            port = _parse_port(port_text, piece, original)
        if not host:
            raise UsageError(f"empty host in node {piece!r}", _redact_text(original))
        nodes.append(Node(host, port if port is not None else DEFAULT_PORTS.get(scheme)))
    if not nodes and scheme in DEFAULT_PORTS:
        nodes.append(Node("127.0.0.1", DEFAULT_PORTS[scheme]))
    return tuple(nodes), username, password


def _parse_port(text: str, piece: str, original: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"invalid port {text!r} in node {piece!r}", _redact_text(original))
    return int(text)


def _redact_text(text: str) -> str:
    """``text`` with a password replaced by ``***``, with or without a scheme (for errors)."""
    if "@" not in text:
        return text
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    cred, _, tail = rest.rpartition("@")
    user = cred.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{tail}" if ":" in cred else text


def _build(
    scheme: str, location: str, keys: tuple[str, ...], text: str, has_key_list: bool
) -> StreamUri:
    nodes: tuple[Node, ...] = ()
    username = password = None
    if scheme == "file":
        if not location:
            raise UsageError(
                f"no file path in {text!r}; write file://PATH/KEY, e.g. file://./ticks.ss/tick",
            )
        location = unquote(location)
    elif scheme in DEFAULT_PORTS:
        nodes, username, password = _parse_nodes(scheme, location, text)
        location = location.rpartition("@")[2]  # credentials live in username/password only
    elif scheme == "memory" and not location:
        location = "default"
    return StreamUri(scheme, location, keys, nodes, username, password, has_key_list)


def parse_stream_uri(text: str) -> StreamUri:
    """Parse ``scheme://nodes/keys``; the final ``/`` is required (keys may be empty)."""
    scheme, rest = _split_scheme(text)
    if "/" not in rest:
        raise UsageError(
            f"stream URI {_redact_text(text)!r} has no final '/' before the stream keys; "
            f"did you mean {_redact_text(text)}/STREAM ?",
        )
    location, key_text = rest.rsplit("/", 1)
    keys = tuple(
        validate_stream_key(k.strip(), where=_redact_text(text))
        for k in key_text.split(",")
        if k.strip()
    )
    return _build(scheme, location, keys, text, True)


def parse_streamer_uri(text: str) -> StreamUri:
    """Parse a streamer URI (``scheme://nodes``), where a trailing ``/keys`` part is optional.

    For ``file`` the whole location is the path (a trailing ``/`` is stripped).
    """
    scheme, rest = _split_scheme(text)
    if scheme == "stdio":
        return StreamUri("stdio", "", (), has_key_list=False)
    if scheme == "file":
        return _build(scheme, rest.rstrip("/"), (), text, False)
    if "/" in rest:
        return parse_stream_uri(text)
    return _build(scheme, rest, (), text, False)
