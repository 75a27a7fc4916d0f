"""``streamkit relay`` stdio → stdio, end to end: real subprocesses in real pipes."""

from __future__ import annotations

import calendar
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

import streamkit

ROOT = Path(__file__).resolve().parents[2]
STREAMKIT = [sys.executable, "-m", "streamkit.cli.main"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TIMEOUT = 30


def run(*args: str, stdin: bytes | None = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*STREAMKIT, *args],
        input=stdin,
        capture_output=True,
        env=ENV,
        timeout=TIMEOUT,
        check=False,
    )


def spawn(*args: str, stdin: IO[bytes] | int | None = None) -> subprocess.Popen[bytes]:
    """A streamkit command running beside the test, its stdout and stderr piped back."""
    return subprocess.Popen(
        [*STREAMKIT, *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )


def lines(out: bytes) -> list[str]:
    return out.decode("utf-8").splitlines()


def fields(line: str) -> tuple[str, str, int, int, str]:
    """``[ts | key | seq | shard] payload`` → its parts (streamkit's output form)."""
    prefix, _, payload = line.rstrip("\n").partition("] ")
    ts, key, seq, shard = (part.strip() for part in prefix[1:].split("|"))
    return ts, key, int(seq), int(shard), payload


def ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000


def no_traceback(stderr: bytes) -> None:
    assert b"Traceback" not in stderr, stderr.decode()


def test_clock_into_relay_prints_the_ticks() -> None:
    clock = subprocess.Popen(
        [*STREAMKIT, "clock", "--stream", "tick", "--interval", "0", "--count", "5"],
        stdout=subprocess.PIPE,
        env=ENV,
    )
    assert clock.stdout is not None
    relay = subprocess.run(
        [*STREAMKIT, "relay", "--input", "stdio:///tick", "--output", "stdio:///"],
        stdin=clock.stdout,
        capture_output=True,
        env=ENV,
        timeout=TIMEOUT,
        check=False,
    )
    clock.stdout.close()
    assert clock.wait(TIMEOUT) == 0
    assert relay.returncode == 0, relay.stderr
    assert relay.stderr == b""
    parsed = [fields(line) for line in lines(relay.stdout)]
    assert [(key, seq, shard, json.loads(p)) for _, key, seq, shard, p in parsed] == [
        ("tick", n, 0, {"tick": n}) for n in range(5)
    ]


def test_relay_keeps_timestamp_seq_and_shard_exactly() -> None:
    source = run("clock", "--interval", "0", "--count", "50")
    assert source.returncode == 0
    # Canonical lines come out exactly as they went in, through one and two relays.
    once = run("relay", stdin=source.stdout)
    assert once.returncode == 0 and once.stdout == source.stdout
    extra = (
        b"[2022-01-01T00:00:00.5 | k | 7 | 3] half past\n"
        b"[2022-01-01T00:00:01 | k | 18446744073709551615] max seq\n"
    )
    relayed = run("relay", stdin=extra)
    assert lines(relayed.stdout) == [
        "[2022-01-01T00:00:00.500 | k | 7 | 3] half past",
        "[2022-01-01T00:00:01.000 | k | 18446744073709551615 | 0] max seq",
    ]
    assert run("relay", stdin=relayed.stdout).stdout == relayed.stdout


def test_relay_from_a_regular_file_on_stdin(tmp_path: Path) -> None:
    path = tmp_path / "ticks.log"
    path.write_bytes(run("clock", "--interval", "0", "--count", "3000").stdout)
    with path.open("rb") as handle:
        done = subprocess.run(
            [*STREAMKIT, "relay"], stdin=handle, capture_output=True, env=ENV, timeout=TIMEOUT
        )
    assert done.returncode == 0
    assert done.stdout == path.read_bytes()


def test_count_stops_after_n_even_on_an_endless_input() -> None:
    clock = spawn("clock", "--interval", "0")
    assert clock.stdout is not None and clock.stderr is not None
    relay = subprocess.run(
        [*STREAMKIT, "relay", "--count", "7"],
        stdin=clock.stdout,
        capture_output=True,
        env=ENV,
        timeout=TIMEOUT,
        check=False,
    )
    clock.stdout.close()
    assert relay.returncode == 0 and relay.stderr == b""
    assert [json.loads(fields(line)[4])["tick"] for line in lines(relay.stdout)] == list(range(7))
    # The clock learns that its reader left and exits quietly too.
    assert clock.wait(TIMEOUT) == 0
    assert clock.stderr.read() == b""


def test_count_zero_relays_nothing() -> None:
    done = run("relay", "--count", "0", stdin=b"a\nb\n")
    assert done.returncode == 0 and done.stdout == b""


def test_since_and_until_select_a_time_window() -> None:
    data = b"".join(
        b"[2026-11-23T07:00:0%d.000 | k | %d | 0] m%d\n" % (second, second, second)
        for second in range(6)
    )
    window = run(
        "relay", "--since", "2026-11-23T07:00:02", "--until", "2026-11-23T07:00:04", stdin=data
    )
    assert window.returncode == 0
    assert [fields(line)[4] for line in lines(window.stdout)] == ["m2", "m3", "m4"]
    since_epoch = str(ms(2026, 11, 23, 7, 0, 4) // 1000)
    assert [
        fields(x)[4] for x in lines(run("relay", "--since", since_epoch, stdin=data).stdout)
    ] == [
        "m4",
        "m5",
    ]
    # --until stops at the first later message: what comes after it is not relayed.
    late = data + b"[2026-11-23T07:00:01.000 | k | 9 | 0] back in time\n"
    until = run("relay", "--until", "2026-11-23T07:00:01Z", stdin=late)
    assert [fields(line)[4] for line in lines(until.stdout)] == ["m0", "m1"]


DAYS = b"".join(
    b"[2026-%s | k | %d | 0] m%d\n" % (stamp, n, n)
    for n, stamp in enumerate([b"11-30T23:59:59.999", b"12-01T00:00:00.000", b"12-01T07:00:00.000"])
)


def test_since_takes_dates_offsets_and_epoch_milliseconds() -> None:
    """Issue 11 #8: a date alone was refused; milliseconds were read as seconds, silently."""
    date = run("relay", "--since", "2026-12-01", stdin=DAYS)
    assert date.returncode == 0, date.stderr
    assert [fields(x)[4] for x in lines(date.stdout)] == ["m1", "m2"]
    offset = run("relay", "--since", "2026-12-01T08:00:00+02:00", stdin=DAYS)
    assert [fields(x)[4] for x in lines(offset.stdout)] == ["m2"]
    millis = str(ms(2026, 12, 1, 7))
    quiet = run("relay", "--since", millis, stdin=DAYS)
    assert [fields(x)[4] for x in lines(quiet.stdout)] == ["m2"] and quiet.stderr == b""
    loud = run("relay", "--since", millis, "-v", stdin=DAYS)
    assert [fields(x)[4] for x in lines(loud.stdout)] == ["m2"]
    assert (
        f"--since {millis} is at least 10^11, so it is read as epoch milliseconds: "
        "2026-12-01T07:00:00.000 UTC"
    ) in loud.stderr.decode()


def test_until_before_since_is_a_usage_error() -> None:
    done = run("relay", "--since", "2026-12-01", "--until", "2026-11-30T12:00Z", stdin=DAYS)
    assert done.returncode == 2 and done.stdout == b""
    assert lines(done.stderr) == [
        "streamkit relay: error: --until: 2026-11-30T12:00:00.000 is before --since "
        "2026-12-01T00:00:00.000 (UTC): nothing could be selected"
    ]


MIXED = (
    b"[a] for a\n"
    b"[b] for b\n"
    b"plain line\n"
    b"[2022-01-01T00:00:00] timestamp only\n"
    b"[broadcast] literal broadcast key\n"
    b"[a | 10 | 2] a on shard 2\n"
)


def test_input_keys_keep_only_those_keys_and_broadcast_lines() -> None:
    only_a = run("relay", "--input", "stdio:///a", "--output", "stdio:///", stdin=MIXED)
    assert only_a.returncode == 0
    assert [(fields(x)[1], fields(x)[4]) for x in lines(only_a.stdout)] == [
        ("a", "for a"),
        ("broadcast", "plain line"),
        ("broadcast", "timestamp only"),
        ("a", "a on shard 2"),
    ]
    everything = run("relay", "--input", "stdio:///", stdin=MIXED)
    assert len(lines(everything.stdout)) == 6
    two = run("relay", "--input", "stdio:///b,broadcast", stdin=MIXED)
    assert [fields(x)[4] for x in lines(two.stdout)] == [
        "for b",
        "plain line",
        "timestamp only",
        "literal broadcast key",
    ]


def test_key_filter_that_left_messages_out_says_so_once_at_exit() -> None:
    """Issue 11 #2: clock names its stream ``clock``; a relay of ``tick`` gets nothing, and
    says why without -v (how many, which keys it saw)."""
    clock = spawn("clock", "--interval", "10ms", "--count", "5")
    relay = run("relay", "--input", "stdio:///tick", "--output", "stdio:///tick",
                stdin=clock.communicate()[0])  # fmt: skip
    assert relay.returncode == 0 and relay.stdout == b""
    assert lines(relay.stderr) == [
        "streamkit relay: 5 messages of other streams left out by the key filter of --input "
        "stdio:///tick (it keeps tick; streams seen: clock)"
    ]
    only_a = run("relay", "--input", "stdio:///a", stdin=MIXED)
    assert b"2 messages of other streams" in only_a.stderr
    assert b"streams seen: b, broadcast)" in only_a.stderr
    everything = run("relay", "--input", "stdio:///", stdin=MIXED)
    assert everything.stderr == b""


def test_key_filter_of_a_file_input_says_what_it_left_out(tmp_path: Path) -> None:
    path = tmp_path / "t.ss"
    assert run("clock", "--interval", "0", "--count", "7", "--output", f"file://{path}/clock")
    relay = run("relay", "--input", f"file://{path}/tick")
    assert relay.returncode == 0 and relay.stdout == b""
    assert b"7 messages of other streams" in relay.stderr
    assert b"streams seen: clock)" in relay.stderr and b"SEA" not in relay.stderr
    assert run("relay", "--input", f"file://{path}/clock").stderr == b""


def test_output_key_renames_every_message_and_no_key_keeps_each_own() -> None:
    renamed = run("relay", "--output", "stdio:///out", stdin=MIXED)
    assert renamed.returncode == 0
    parsed = [fields(x) for x in lines(renamed.stdout)]
    assert {key for _, key, *_ in parsed} == {"out"}
    assert [(seq, shard) for _, _, seq, shard, _ in parsed][-1] == (10, 2)
    kept = run("relay", "--output", "stdio:///", stdin=MIXED)
    assert [fields(x)[1] for x in lines(kept.stdout)] == [
        "a",
        "b",
        "broadcast",
        "broadcast",
        "broadcast",
        "a",
    ]
    assert fields(lines(kept.stdout)[3])[0] == "2022-01-01T00:00:00.000"


def test_invalid_line_exits_3_after_writing_every_earlier_message() -> None:
    good = b"".join(b"[k | %d] message number %d\n" % (n, n) for n in range(30000))
    done = run("relay", stdin=good + b"[Jan 1, 2022] nope\n[k] after\n")
    assert done.returncode == 3
    no_traceback(done.stderr)
    error = done.stderr.decode()
    assert "<stdin>:30001" in error and "Jan 1, 2022" in error and "--no-meta" in error
    assert len(error.strip().splitlines()) == 1
    out = lines(done.stdout)
    assert len(out) == 30000
    assert fields(out[-1])[4] == "message number 29999"


def test_invalid_line_in_a_small_input() -> None:
    done = run("relay", stdin=b"one\n\ntwo\n[a | b] bad part\nthree\n")
    assert done.returncode == 3
    assert "<stdin>:4" in done.stderr.decode() and "'b'" in done.stderr.decode()
    assert [fields(x)[4] for x in lines(done.stdout)] == ["one", "two"]


def test_on_invalid_skip_warns_counts_and_exits_0() -> None:
    done = run("relay", "--on-invalid", "skip", stdin=b"one\n[ ] x\ntwo\n[a|b]\nthree\n")
    assert done.returncode == 0
    assert [fields(x)[4] for x in lines(done.stdout)] == ["one", "two", "three"]
    error = done.stderr.decode()
    assert "<stdin>:2" in error and "<stdin>:4" in error
    assert "3 messages relayed, 2 invalid lines skipped" in error
    no_traceback(done.stderr)


def test_on_invalid_raw_keeps_the_line_as_a_broadcast_payload() -> None:
    done = run("relay", "--on-invalid", "raw", stdin=b'["array", "of"]\n[k] fine\n')
    assert done.returncode == 0 and done.stderr == b""
    assert [(fields(x)[1], fields(x)[4]) for x in lines(done.stdout)] == [
        ("broadcast", '["array", "of"]'),
        ("k", "fine"),
    ]


def test_no_meta_reads_json_arrays_as_payloads() -> None:
    data = b'["array", "of", "values"]\n[1, 2]\n'
    assert run("relay", stdin=data).returncode == 3
    done = run("relay", "--no-meta", stdin=data)
    assert done.returncode == 0
    assert [fields(x)[4] for x in lines(done.stdout)] == ['["array", "of", "values"]', "[1, 2]"]


def test_non_utf8_input_is_a_clear_data_error() -> None:
    done = run("relay", stdin=b"fine\nbad \xff\xfe bytes\n")
    assert done.returncode == 3
    no_traceback(done.stderr)
    error = done.stderr.decode()
    assert "<stdin>:2" in error and "UTF-8" in error
    assert [fields(x)[4] for x in lines(done.stdout)] == ["fine"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--input", "kafka://host:9092"], "kafka://host:9092/STREAM"),
        (["--output", "stdio://"], "stdio:///STREAM"),
        (["--input", "ticks.ss"], "file://ticks.ss/KEY"),
        (["--input", "nope://x/a"], "known schemes"),
        (["--output", "stdio:///a,b"], "names 2 streams"),
        (["--input", "stdio:///a?"], "invalid character '?'"),
        (["--since", "yesterday"], "-10m"),
        (["--offset", "middle"], "start, end or a sequence number"),
        (["--offset", "end"], "--offset must be start"),
        (["--follow"], "--follow applies to files"),
        (["--mode", "resumable", "--group", "g"], "--mode resumable"),
        (["--mode", "load-balanced"], "--group"),
        (["--on-invalid", "ignore"], "fail"),
        (["--nonsense"], "No such option"),
    ],
)
def test_bad_uri_or_option_exits_2_with_the_fix(args: list[str], expected: str) -> None:
    done = run("relay", *args, stdin=b"x\n")
    assert done.returncode == 2, done.stderr
    assert done.stdout == b""
    assert expected in done.stderr.decode()
    no_traceback(done.stderr)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["relay", "--input", "memory://x/a"], "--input"),
        (["relay", "--output", "memory://x/a"], "--output"),
        (["clock", "--count", "1", "--output", "memory:///a"], "--output"),
        (["processor", "--exec", "cat", "--input", "memory://x/a"], "--input"),
    ],
)
def test_memory_uris_are_refused_on_the_command_line(args: list[str], option: str) -> None:
    """Issue 11 #10: --input memory:// hung, --output memory:// dropped everything."""
    done = run(*args, stdin=b"[a] x\n")
    assert done.returncode == 2 and done.stdout == b""
    (line,) = lines(done.stderr)
    assert line.startswith(f"streamkit {args[0]}: error: {option}: memory:")
    assert "inside one process" in line and "streamkit.connect" in line


def test_password_in_a_bad_uri_is_not_printed() -> None:
    done = run("relay", "--output", "redis://user:s3cr3t@host:6379")
    assert done.returncode == 2
    assert b"s3cr3t" not in done.stderr and b"user:***@host:6379/STREAM" in done.stderr


def test_relay_into_head_exits_0_quietly() -> None:
    clock = spawn("clock", "--interval", "0")
    assert clock.stdout is not None and clock.stderr is not None
    relay = spawn("relay", stdin=clock.stdout)
    clock.stdout.close()
    assert relay.stdout is not None and relay.stderr is not None
    first = relay.stdout.readline()
    relay.stdout.close()  # what `head -1` does after one line
    assert fields(first.decode())[4] == '{"tick": 0}'
    assert relay.wait(TIMEOUT) == 0
    assert relay.stderr.read() == b""
    assert clock.wait(TIMEOUT) == 0
    assert clock.stderr.read() == b""


def test_relay_into_head_in_a_shell_pipeline() -> None:
    script = (
        f"{' '.join(STREAMKIT)} clock --interval 0 --count 100000 "
        f"| {' '.join(STREAMKIT)} relay 2>relay.err | head -1; "
        'echo "status ${PIPESTATUS[0]} ${PIPESTATUS[1]}"'
    )
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        env=ENV,
        timeout=TIMEOUT,
        cwd=os.environ.get("TMPDIR", "/tmp"),
        check=False,
    )
    out = lines(done.stdout)
    assert fields(out[0])[4] == '{"tick": 0}'
    assert out[1] == "status 0 0"
    assert done.stderr == b""


def read_lines(stream: IO[bytes], count: int) -> list[bytes]:
    return [stream.readline() for _ in range(count)]


@pytest.mark.parametrize(("number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_drains_everything_already_written_and_exits_128_plus_n(
    number: int, code: int
) -> None:
    relay = spawn("relay", "--output", "stdio:///out", stdin=subprocess.PIPE)
    assert relay.stdin is not None and relay.stdout is not None and relay.stderr is not None
    relay.stdin.write(b"one\n[k | 5] two\n")
    relay.stdin.flush()
    seen = read_lines(relay.stdout, 2)
    relay.stdin.write(b"three\n[2022-01-01T00:00:00] four\nfive\n")
    relay.stdin.flush()
    seen += read_lines(relay.stdout, 3)
    assert [fields(x.decode())[4] for x in seen] == ["one", "two", "three", "four", "five"]
    relay.send_signal(number)  # stdin stays open: the relay must not wait for EOF
    assert relay.wait(TIMEOUT) == code
    assert relay.stdout.read() == b""
    no_traceback(relay.stderr.read())
    relay.stdin.close()


@pytest.mark.parametrize(("number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_arriving_with_end_of_input_still_sets_the_exit_code(number: int, code: int) -> None:
    """Ctrl-C in a shell stops the writer of the pipe too: the relay sees EOF and the signal
    at about the same moment, and must still exit 128+N with everything written."""
    for _ in range(3):
        relay = spawn("relay", "--output", "stdio:///out", stdin=subprocess.PIPE)
        assert relay.stdin is not None and relay.stdout is not None
        relay.stdin.write(b"one\ntwo\n")
        relay.stdin.flush()
        read_lines(relay.stdout, 2)
        relay.stdin.write(b"three\nfour\nfive\n")
        relay.stdin.flush()
        read_lines(relay.stdout, 3)
        relay.send_signal(number)
        rest, err = relay.communicate(timeout=TIMEOUT)  # closes stdin at once
        assert relay.returncode == code
        assert rest == b""
        no_traceback(err)


def test_a_second_signal_exits_even_while_blocked_on_a_full_stdout() -> None:
    """Nobody reads the relay's stdout: it blocks in a write, where the event loop cannot run.
    The first SIGTERM asks for a drain that cannot happen; the second must end the process."""
    clock = subprocess.Popen(
        [*STREAMKIT, "clock", "--interval", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    assert clock.stdout is not None
    read_fd, write_fd = os.pipe()
    relay = subprocess.Popen(
        [*STREAMKIT, "relay"], stdin=clock.stdout, stdout=write_fd, stderr=subprocess.PIPE, env=ENV
    )
    os.close(write_fd)
    clock.stdout.close()
    try:
        assert os.read(read_fd, 100)  # the relay is running; the pipe then fills up
        # Signals sent back to back merge into one; repeat until the process is gone.
        code = None
        for _ in range(TIMEOUT * 10):
            relay.send_signal(signal.SIGTERM)
            try:
                code = relay.wait(0.1)
                break
            except subprocess.TimeoutExpired:
                continue
        assert code == 143
        assert relay.stderr is not None
        no_traceback(relay.stderr.read())
    finally:
        os.close(read_fd)
        clock.kill()
        clock.wait(TIMEOUT)
        relay.kill()
        relay.wait(TIMEOUT)


def test_json_output_and_input_round_trip() -> None:
    source = run("clock", "--interval", "0", "--count", "20").stdout + (
        b"[2022-01-01T00:00:00.007 | k | 3 | 2]   payload  with  spaces  \n"
        b'[k] "a json string"\n'
        b'[k] {"nested": [1, 2, {"a": null}]}\n'
        b"[k] 12345\n"
        b"plain text\n"
    )
    # Timestamps are given to every line once, so both paths see the same messages.
    as_lines = run("relay", stdin=source)
    as_json = run("relay", "--output-format", "json", stdin=as_lines.stdout)
    assert as_json.returncode == 0
    objects = [json.loads(line) for line in lines(as_json.stdout)]
    assert objects[0]["topic"] == "clock" and objects[0]["payload"] == {"tick": 0}
    assert objects[20]["payload"] == "payload  with  spaces  "
    assert (objects[20]["partition"], objects[20]["offset"]) == (2, 3)
    assert objects[21]["payload"] == '"a json string"'
    back = run("relay", "--input-format", "json", stdin=as_json.stdout)
    assert back.returncode == 0, back.stderr
    assert back.stdout == as_lines.stdout
    again = run("relay", "--input-format", "json", "--output-format", "json", stdin=as_json.stdout)
    assert again.stdout == as_json.stdout


def test_binary_payloads_keys_and_headers_survive_json_relays() -> None:
    source = (
        b'{"topic":"k","partition":1,"offset":7,"ts":5,"key":{"base64":"/w=="},'
        b'"headers":["h",{"base64":"gA=="}],"payload_base64":"AP8="}\n'
        b'{"topic":"k","partition":0,"offset":8,"ts":6,"payload":{"a": 1,"payload":2}}\n'
    )
    once = run("relay", "--input-format", "json", "--output-format", "json", stdin=source)
    assert once.returncode == 0, once.stderr
    assert once.stdout == source
    # The line format cannot carry the binary payload: a clear data error, not a crash.
    as_lines = run("relay", "--input-format", "json", stdin=source)
    assert as_lines.returncode == 3 and b"not UTF-8" in as_lines.stderr
    no_traceback(as_lines.stderr)


def test_invalid_json_input_exits_3_naming_the_line() -> None:
    data = b'{"topic": "k", "payload": 1}\n{"topic": "k", "payload": \n'
    done = run("relay", "--input-format", "json", stdin=data)
    assert done.returncode == 3
    assert "<stdin>:2" in done.stderr.decode()
    assert len(lines(done.stdout)) == 1
    no_traceback(done.stderr)


def test_bad_topic_in_json_input_is_a_data_error_naming_the_line() -> None:
    done = run("relay", "--input-format", "json", stdin=b'{"topic": "a b", "payload": 1}\n')
    assert done.returncode == 3
    assert "<stdin>:1" in done.stderr.decode() and "' '" in done.stderr.decode()


def test_payload_the_line_format_cannot_carry_is_a_data_error() -> None:
    done = run(
        "relay",
        "--input-format",
        "json",
        stdin=b'{"topic": "k", "payload": "ok"}\n{"topic": "k", "offset": 4, "payload": "a\\nb"}\n',
    )
    assert done.returncode == 3
    assert "k:0:4" in done.stderr.decode() and "newline" in done.stderr.decode()
    assert len(lines(done.stdout)) == 1
    no_traceback(done.stderr)


@pytest.mark.parametrize("command", [[], ["clock"], ["relay"]])
def test_help_shows_an_example(command: list[str]) -> None:
    done = run(*command, "-h")
    assert done.returncode == 0
    text = done.stdout.decode()
    assert "Usage: streamkit" in text
    assert "streamkit clock --stream tick" in text


@pytest.mark.parametrize(("pure", "codec"), [("0", "C"), ("1", "pure Python")])
def test_version_names_the_active_codec(pure: str, codec: str) -> None:
    done = subprocess.run(
        [*STREAMKIT, "--version"],
        capture_output=True,
        env={**ENV, "STREAMKIT_PURE_PYTHON": pure},
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0
    text = done.stdout.decode().strip()
    assert text == f"streamkit, version {streamkit.__version__} (codec: {codec})"


def test_bin_wrappers_work_from_a_checkout() -> None:
    script = f"{ROOT}/bin/clock --count 3 --interval 0 | {ROOT}/bin/relay --output stdio:///w"
    done = subprocess.run(
        ["sh", "-c", script], capture_output=True, env=ENV, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0
    assert [fields(x)[1:4] for x in lines(done.stdout)] == [("w", n, 0) for n in range(3)]
