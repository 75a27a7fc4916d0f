"""CRC-16/CDMA2000: the check values of the spec, continuation, and the running checksum."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamkit.formats.crc16 import CRC16_INIT, crc16, crc16_python, running_update, word_table

VECTORS = {
    b"123456789": 0x4C06,
    b"hello, world": 0x8028,
    b"123456789abcd": 0xA106,
    b"EOS": 0xED7C,
    b"hi": 0xD73B,
    b"hello-0": 0xF556,
}


def test_check_values_of_the_spec() -> None:
    for data, expected in VECTORS.items():
        assert crc16(data) == expected, data
        assert crc16_python(data) == expected, data


def test_empty_input_leaves_the_register_unchanged() -> None:
    assert crc16(b"") == CRC16_INIT
    assert crc16(b"", 0x1234) == 0x1234
    assert crc16_python(b"") == CRC16_INIT


def test_continuation_is_the_crc_of_the_concatenation() -> None:
    # The spec's running-checksum fact: 123456789 then abcd gives 0xA106.
    assert crc16(b"abcd", crc16(b"123456789")) == 0xA106
    assert crc16_python(b"abcd", crc16_python(b"123456789")) == 0xA106


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_the_compiled_crc_matches_the_python_table_loop(a: bytes, b: bytes) -> None:
    assert crc16(a + b) == crc16_python(a + b)
    assert crc16(b, crc16(a)) == crc16(a + b)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_running_update_feeds_two_big_endian_bytes(running: int, frame_crc: int) -> None:
    assert running_update(running, frame_crc) == crc16(frame_crc.to_bytes(2, "big"), running)


def test_word_table_is_complete() -> None:
    table = word_table()
    assert len(table) == 65536
    assert table[0] == 0
    assert all(0 <= v <= 0xFFFF for v in table[::4099])
