"""``streamkit decode``: ss-decode's output for the reference fixture, filters, beacons, damage."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streamkit.cli.decode import decode
from streamkit.errors import FileFormatError
from streamkit.formats.ss import SsEncoder
from streamkit.message import INTERNAL_KEY

SAMPLE = str(Path(__file__).resolve().parents[1] / "fixtures" / "sample-1.ss")


def run(*args: str) -> Result:
    return CliRunner().invoke(decode, list(args))


def lines(result: Result) -> list[str]:
    assert result.exception is None, result.exception
    return result.stdout_bytes.decode("utf-8").splitlines()


def write_file(path: Path, frames: list[tuple[str, int, int, int, bytes]], interval: int) -> None:
    encoder = SsEncoder(interval)
    path.write_bytes(
        encoder.header(path.name, 1_700_000_000_000) + encoder.encode(frames) + encoder.eos(9)
    )


def test_log_of_the_sample() -> None:
    out = lines(run(SAMPLE))
    assert len(out) == 29
    assert out[0] == (
        '# {"file_name":"vec_map-1694767177436.firedbg.ss",'
        '"created_at":"2023-09-15T08:39:37.437","beacon_interval":1048576}'
    )
    assert out[1].startswith(
        '[2023-09-15T08:39:37.912 | file | 1 | 0] {"id":1,"path":"testcases/vec_map.rs"'
    )
    assert out[-1] == f"[2023-09-15T08:39:38.569 | {INTERNAL_KEY} | 0 | 0] EOS"
    keys = [line.split(" | ")[1] for line in out[1:]]
    assert keys.count("event") == 22 and keys.count("breakpoint") == 4


def test_ndjson_is_strict_one_message_object_per_line() -> None:
    """Issue 11.1: `decode --format ndjson | jq` must read every line: no comment lines."""
    result = run(SAMPLE, "--format", "ndjson")
    assert result.exit_code == 0, result.output
    out = lines(result)
    assert len(out) == 27  # the 27 messages; no header, no EOS
    docs = [json.loads(line) for line in out]
    assert all(set(d) == {"header", "payload"} for d in docs)
    assert INTERNAL_KEY not in {d["header"]["stream_key"] for d in docs}
    # The same message objects as SeaStreamer's form, minus its comment lines and EOS.
    ss = lines(run(SAMPLE, "--format", "ss-ndjson"))
    assert out == [line for line in ss if not line.startswith("/*")][:-1]
    # Asked for by name, the internal stream prints.
    named = lines(run(SAMPLE, "--format", "ndjson", "--stream", INTERNAL_KEY))
    assert [json.loads(line)["payload"] for line in named] == ["EOS"]


def test_strict_ndjson_of_a_file_with_beacons_pipes_into_jq(tmp_path: Path) -> None:
    path = tmp_path / "ticks.ss"
    frames = [("tick", 0, i, 1_700_000_000_000 + i, b'{"tick": %d}' % i) for i in range(300)]
    write_file(path, frames, 128)
    result = run(str(path), "--format", "ndjson")
    assert [json.loads(line)["payload"]["tick"] for line in lines(result)] == list(range(300))
    if shutil.which("jq"):
        jq = subprocess.run(
            ["jq", ".payload.tick"], input=result.output.encode(), capture_output=True, check=True
        )
        assert jq.stdout.split() == [b"%d" % i for i in range(300)]


def test_ss_ndjson_is_ss_decodes_output() -> None:
    """``--format ss-ndjson`` is SeaStreamer's ndjson line for line (reference output stored
    from its ss-decode; it trims the zeros of milliseconds, streamkit prints three digits)."""
    reference = (Path(SAMPLE).parent / "sample-1.ss-decode.ndjson").read_text().splitlines()
    ours = lines(run(SAMPLE, "--format", "ss-ndjson"))
    trimmed = [re.sub(r'("timestamp":"[^"]+?)\.?0*"', r'\1"', line) for line in ours]
    assert trimmed == reference


def test_ss_ndjson_of_the_sample() -> None:
    out = lines(run(SAMPLE, "--format", "ss-ndjson"))
    assert len(out) == 29
    assert out[0].startswith("/* {") and out[0].endswith("} */")
    docs = [json.loads(line) for line in out[1:]]
    assert list(docs[0]["header"]) == ["stream_key", "shard_id", "sequence", "timestamp"]
    assert docs[0]["header"] == {
        "stream_key": "file",
        "shard_id": 0,
        "sequence": 1,
        "timestamp": "2023-09-15T08:39:37.912",
    }
    # JSON payloads are re-serialised compactly with sorted keys; the rest are strings.
    assert out[1].split('"payload":', 1)[1].startswith('{"crate_name":"vec_map","id":1,')
    assert sum(not isinstance(d["payload"], str) for d in docs) == 5
    assert docs[-1]["payload"] == "EOS"


def test_header_only() -> None:
    out = lines(run(SAMPLE, "--header-only"))
    assert out[1] == "[2023-09-15T08:39:37.912 | file | 1 | 0]"
    ndjson = lines(run(SAMPLE, "--header-only", "--format", "ndjson"))
    assert len(ndjson) == 27 and all(json.loads(line)["payload"] is None for line in ndjson)


def test_stream_filter_and_time_window() -> None:
    out = lines(run(SAMPLE, "--stream", "event"))
    assert len(out) == 23 and all(" | event | " in line for line in out[1:])
    out = lines(run(SAMPLE, "--stream", "event,file", "--until", "2023-09-15T08:39:38.490"))
    assert [line.split(" | ")[1:3] for line in out[1:]] == [["file", "1"], ["event", "1"]]
    out = lines(run(SAMPLE, "--since", "2023-09-15T08:39:38.559", "--stream", "event"))
    assert [line.split(" | ")[2] for line in out[1:]] == ["21", "22"]


def test_binary_payloads(tmp_path: Path) -> None:
    path = tmp_path / "bin.ss"
    write_file(path, [("b", 0, 1, 0, b"\xff\x00\x01"), ("t", 0, 1, 0, "é".encode())], 1024)
    out = lines(run(str(path)))
    assert out[1] == "[1970-01-01T00:00:00.000 | b | 1 | 0] <BINARY BLOB>"
    assert out[2] == "[1970-01-01T00:00:00.000 | t | 1 | 0] é"
    assert lines(run(str(path), "--binary", "hex"))[1].endswith("] ff0001")
    assert lines(run(str(path), "--binary", "base64"))[1].endswith("] /wAB")
    docs = [json.loads(line) for line in lines(run(str(path), "--format", "ndjson"))[0:2]]
    assert docs[0]["payload"] == [255, 0, 1] and docs[1]["payload"] == "é"


def test_beacon_lines_follow_ss_decode_placement(tmp_path: Path) -> None:
    path = tmp_path / "beacons.ss"
    # 1024-byte interval; frame 1 ends exactly at 1024 (boundary beacon), frame 3 is spliced.
    first = 1024 - 128 - 33
    frames = [
        ("a", 0, 1, 1000, b"x" * first),
        ("a", 0, 2, 2000, b"y"),
        ("a", 0, 3, 3000, b"z" * 1500),
        ("a", 0, 4, 4000, b"w"),
    ]
    write_file(path, frames, 1024)
    out = lines(run(str(path)))
    kinds = ["beacon" if line.startswith("# [") else line.split(" | ")[2] for line in out[1:]]
    # The boundary beacon at 1024 prints after message 2 (the one after it); the beacon at
    # 2048 that splices message 3 prints right after message 3.
    assert kinds == ["1", "2", "beacon", "3", "beacon", "4", "0"]
    markers = json.loads(out[3][2:])
    assert markers[0]["header"]["sequence"] == 1
    assert set(markers[0]) == {"header", "running_checksum"}
    assert json.loads(out[5][2:])[0]["header"]["sequence"] == 3
    ndjson = lines(run(str(path), "--format", "ss-ndjson"))
    assert ndjson[3].startswith("/* [") and ndjson[3].endswith("] */")


def test_damaged_file_prints_everything_before_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "dam.ss"
    write_file(path, [("k", 0, i, i, b"ok-%d" % i) for i in range(1, 6)], 1024)
    data = bytearray(path.read_bytes())
    data[-56 - 5] ^= 1  # the payload of the last message before EOS
    path.write_bytes(bytes(data))
    result = run(str(path))
    assert isinstance(result.exception, FileFormatError)
    assert "checksum mismatch" in str(result.exception)
    printed = result.stdout_bytes.decode().splitlines()
    assert [line.split(" | ")[2] for line in printed[1:]] == ["1", "2", "3", "4"]


def test_an_empty_file_prints_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.ss"
    path.write_bytes(b"")
    result = run(str(path))
    assert result.exit_code == 0 and result.stdout_bytes == b""


@pytest.mark.parametrize("content", [b"S", b"Ss\x01"])
def test_too_short_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "short.ss"
    path.write_bytes(content)
    result = run(str(path))
    assert isinstance(result.exception, FileFormatError)
    assert "too short" in str(result.exception)


def test_decode_reads_stdin_with_a_dash() -> None:
    data = Path(SAMPLE).read_bytes()
    from_pipe = CliRunner().invoke(
        decode, ["-", "--stream", "event", "--since", "1694767178.5"], input=data
    )
    from_file = run(SAMPLE, "--stream", "event", "--since", "1694767178.5")
    assert lines(from_pipe) == lines(from_file) and len(lines(from_file)) > 5
    truncated = CliRunner().invoke(decode, ["-"], input=data[:1000])
    assert isinstance(truncated.exception, FileFormatError)
    assert "middle of a message" in str(truncated.exception)


def test_ndjson_payloads_keep_every_digit_and_always_encode(tmp_path: Path) -> None:
    """orjson serialises the payloads; what it cannot take exactly takes the json path."""
    path = tmp_path / "j.ss"
    payloads = [
        b'{"b": 1, "a": [1.5, 2e-7]}',
        b"123456789012345678901234567890",  # beyond 64 bits: every digit kept
        b'{"n": 18446744073709551615, "m": -9223372036854775808}',
        b'"\\ud800"',  # a lone surrogate: escaped, not a traceback
        b"not json \x04",
        b"\xff\x00",
    ]
    write_file(path, [("j", 0, i, 5, p) for i, p in enumerate(payloads)], 1 << 20)
    result = run(str(path), "--format", "ndjson")
    assert result.exit_code == 0, result.output
    out = result.stdout_bytes.split(b"\n")[:-1]
    assert [line.split(b'"payload":', 1)[1][:-1] for line in out] == [
        b'{"a":[1.5,2e-7],"b":1}',
        b"123456789012345678901234567890",
        b'{"m":-9223372036854775808,"n":18446744073709551615}',
        b'"\\ud800"',
        b'"not json \\u0004"',
        b"[255,0]",
    ]
