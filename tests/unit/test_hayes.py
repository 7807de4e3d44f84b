"""The virtual Hayes modem (V.250 and the Hayes command set), sans-IO.

Every command and result code, the X0..X4 table, S-register bounds, the
+++ guard-time rules with time given as ``now``, the control circuits, the
parser fed all at once, one byte at a time and with trailing data, what
Debian's ``chat`` sends, and hypothesis: arbitrary DTE input, line events and
time steps, and an independent model of the escape rules.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dialsim.proto.events import ModemEvent
from dialsim.proto.hayes import (
    CONNECT_CODES,
    MAX_COMMAND_LINE,
    REGISTERS,
    RESULT_TEXT,
    AnswerRequested,
    ControlLinesChanged,
    DialRequested,
    HangupRequested,
    HayesModem,
    ModemState,
    ResultCodeIssued,
)
from dialsim.proto.machine import Machine

PROTOCOL = "ARQ/V34/LAPM/V42BIS"


def cmd(m: HayesModem, data: bytes, now: float = 0.0) -> bytes:
    """Send DTE octets; return what the modem sent back to the DTE."""
    m.receive(data, now)
    return b"".join(m.output(now))


def quiet_modem(**kw) -> HayesModem:
    """A modem with echo off, so replies are just the result codes."""
    m = HayesModem(**kw)
    assert cmd(m, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    m.events()
    return m


def online(m: HayesModem | None = None, t: float = 0.0, rate: float = 28800) -> HayesModem:
    m = m or quiet_modem()
    cmd(m, b"ATDT5551234\r", t)
    m.connected(rate, t + 1.0, PROTOCOL)
    assert b"".join(m.output(t + 1.0)) == f"\r\nCONNECT {int(rate)}/{PROTOCOL}\r\n".encode()
    assert m.state is ModemState.ONLINE_DATA
    m.events()
    return m


def results(events: list[ModemEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, ResultCodeIssued)]


def line(m: HayesModem, now: float = 0.0) -> bytes:
    return b"".join(m.line_output(now))


# ---------------------------------------------------------------------------
# Shape


def test_is_a_machine_and_events_are_modem_events():
    m = HayesModem()
    assert isinstance(m, Machine)
    for cls in (
        DialRequested,
        AnswerRequested,
        HangupRequested,
        ResultCodeIssued,
        ControlLinesChanged,
    ):
        assert issubclass(cls, ModemEvent)
    assert m.next_deadline() is None
    m.on_timer(100.0)  # nothing due: nothing happens
    assert m.output(100.0) == [] and m.events() == []


# ---------------------------------------------------------------------------
# Command line syntax


def test_at_echo_and_ok():
    m = HayesModem()
    assert cmd(m, b"AT\r") == b"AT\r\r\nOK\r\n"
    assert results(m.events()) == ["OK"]


def test_prefix_is_case_insensitive_and_garbage_before_it_is_ignored():
    m = quiet_modem()
    for prefix in (b"AT", b"at", b"At", b"aT"):
        assert cmd(m, prefix + b"\r") == b"\r\nOK\r\n"
    assert cmd(m, b"xyz\x00\nAAT\r") == b"\r\nOK\r\n"
    assert cmd(m, b"hello\r") == b""  # no prefix, no command


def test_several_commands_on_one_line_spaces_and_case():
    m = HayesModem()
    assert cmd(m, b"ATE0V1X3S0=2\r") == b"ATE0V1X3S0=2\r\r\nOK\r\n"
    assert (m.option("E"), m.option("V"), m.option("X"), m.s_register(0)) == (0, 1, 3, 2)
    assert cmd(m, b"at x 4 s 0 = 1 &c 0\r") == b"\r\nOK\r\n"
    assert (m.option("X"), m.s_register(0), m.option("&C")) == (4, 1, 0)


def test_missing_number_means_zero():
    m = HayesModem()
    assert cmd(m, b"ATE\r") == b"ATE\r\r\nOK\r\n"  # E alone is E0
    assert m.option("E") == 0
    assert cmd(m, b"ATX\r") == b"\r\nOK\r\n" and m.option("X") == 0


def test_unknown_command_and_bad_value_are_errors_that_stop_the_line():
    m = quiet_modem()
    assert cmd(m, b"ATJ\r") == b"\r\nERROR\r\n"
    assert cmd(m, b"ATE2\r") == b"\r\nERROR\r\n"
    assert cmd(m, b"ATX5\r") == b"\r\nERROR\r\n"
    # Commands before the error took effect, those after it did not.
    assert cmd(m, b"ATX2J V0\r") == b"\r\nERROR\r\n"
    assert m.option("X") == 2 and m.option("V") == 1
    assert m.commands_rejected == 4


def test_empty_line_is_ok_and_control_characters_are_ignored():
    m = quiet_modem()
    assert cmd(m, b"AT\r") == b"\r\nOK\r\n"
    assert cmd(m, b"ATX\x001\x07\r") == b"\r\nOK\r\n"
    assert m.option("X") == 1


def test_parity_bit_is_ignored_in_command_state():
    m = HayesModem()
    # "AT\r" sent as 7 data bits with mark parity: the modem echoes it as it came.
    assert cmd(m, b"\xc1\xd4\x8d") == b"\xc1\xd4\x8d\r\nOK\r\n"


def test_backspace_editing_with_echo():
    m = HayesModem()
    out = cmd(m, b"ATX3\x084\r")
    assert out == b"ATX3\x08 \x084\r\r\nOK\r\n"
    assert m.option("X") == 4
    # A backspace with nothing typed after AT deletes nothing and echoes nothing.
    assert cmd(m, b"AT\x08\x08\r") == b"AT\r\r\nOK\r\n"
    # S5 chooses the editing character.
    assert cmd(m, b"ATS5=127\r").endswith(b"OK\r\n")
    assert cmd(m, b"ATX2Z\x7f\r") == b"ATX2Z\x7f \x7f\r\r\nOK\r\n"
    assert m.option("X") == 2


def test_too_long_line_is_an_error():
    m = quiet_modem()
    assert cmd(m, b"AT" + b"E0" * (MAX_COMMAND_LINE // 2 + 1) + b"\r") == b"\r\nERROR\r\n"
    assert cmd(m, b"AT" + b" " * 10 + b"E0" * (MAX_COMMAND_LINE // 2 - 6) + b"\r") == b"\r\nOK\r\n"


def test_a_slash_repeats_the_last_line_at_once_even_an_error():
    m = HayesModem()
    assert cmd(m, b"A/") == b"A/\r\nOK\r\n"  # nothing yet: the empty line
    cmd(m, b"ATI0\r")
    assert cmd(m, b"a/") == b"a/\r\nDIALSIM\r\n\r\nOK\r\n"
    cmd(m, b"ATJ\r")
    assert cmd(m, b"A/") == b"A/\r\nERROR\r\n"


# ---------------------------------------------------------------------------
# Result code formats: V0/V1, Q0/Q1, S3/S4


def test_numeric_and_verbose_result_codes():
    m = quiet_modem()
    assert cmd(m, b"ATV0\r") == b"0\r"
    assert cmd(m, b"ATJ\r") == b"4\r"
    assert cmd(m, b"ATI0\r") == b"DIALSIM\r\n0\r"  # V0 information text: text CR LF
    assert cmd(m, b"ATV1\r") == b"\r\nOK\r\n"


def test_quiet_suppresses_result_codes_but_not_information_text():
    m = quiet_modem()
    assert cmd(m, b"ATQ1\r") == b""
    assert cmd(m, b"ATJ\r") == b""
    assert cmd(m, b"ATS7?\r") == b"\r\n050\r\n"
    assert results(m.events()) == ["OK", "ERROR", "OK"]  # still reported to the driver
    assert cmd(m, b"ATQ0\r") == b"\r\nOK\r\n"


def test_s3_and_s4_shape_the_replies():
    m = quiet_modem()
    assert cmd(m, b"ATS4=33\r") == b"\r!OK\r!"
    assert cmd(m, b"ATS4=10S3=35\r") == b"#\nOK#\n"
    assert cmd(m, b"ATS3=13#\r") == b"\r\nOK\r\n"


# ---------------------------------------------------------------------------
# S-registers


@pytest.mark.parametrize("n", sorted(REGISTERS))
def test_every_register_reads_writes_and_checks_bounds(n):
    lo, hi, default = REGISTERS[n]
    m = quiet_modem()
    assert cmd(m, f"ATS{n}?\r".encode()) == f"\r\n{default:03d}\r\n\r\nOK\r\n".encode()
    for value in (lo, hi):
        m = quiet_modem()  # S3/S4 shape the reply itself: look at the event
        m.receive(f"ATS{n}={value}\r".encode(), 0.0)
        assert results(m.events()) == ["OK"]
        assert m.s_register(n) == value
    for value in (lo - 1, hi + 1):
        if value >= 0:
            m = quiet_modem()
            assert cmd(m, f"ATS{n}={value}\r".encode()) == b"\r\nERROR\r\n"
            assert m.s_register(n) == default


def test_unknown_register_and_selected_register():
    m = quiet_modem()
    assert cmd(m, b"ATS99?\r") == b"\r\nERROR\r\n"
    assert cmd(m, b"ATS99=1\r") == b"\r\nERROR\r\n"
    assert cmd(m, b"ATS7=1000\r") == b"\r\nERROR\r\n"
    assert cmd(m, b"ATS7\r") == b"\r\nOK\r\n"  # selects S7 (Hayes)
    assert cmd(m, b"AT=30\r") == b"\r\nOK\r\n"
    assert cmd(m, b"AT?\r") == b"\r\n030\r\n\r\nOK\r\n"
    assert cmd(m, b"ATS8=3S8?S7?\r") == b"\r\n003\r\n\r\n030\r\n\r\nOK\r\n"


def test_factory_registers_from_the_driver():
    m = HayesModem(registers={7: 30, 0: 2})
    assert m.s_register(7) == 30 and m.s_register(0) == 2
    with pytest.raises(ValueError):
        HayesModem(registers={7: 0})
    with pytest.raises(KeyError):
        m.s_register(42)


# ---------------------------------------------------------------------------
# I, &V, Z, &F, &W, extended commands


def test_identification():
    m = quiet_modem(identity={0: "2400", 3: "line one\nline two"})
    assert cmd(m, b"ATI\r") == b"\r\n2400\r\n\r\nOK\r\n"
    assert cmd(m, b"ATI3\r") == b"\r\nline one\r\nline two\r\n\r\nOK\r\n"
    assert cmd(m, b"ATI5\r") == b"\r\nOK\r\n"
    assert cmd(m, b"ATI10\r") == b"\r\nERROR\r\n"


def test_show_configuration():
    m = quiet_modem()
    cmd(m, b"ATX3S0=2&W\r")
    cmd(m, b"ATX1\r")
    out = cmd(m, b"AT&V\r").decode()
    active, stored = out.split("STORED PROFILE 0:")
    assert "ACTIVE PROFILE:" in active
    assert re.search(r"\bE0\b.*\bQ0\b.*\bV1\b.*\bX1\b.*&C1 &D2", active)
    assert "S00:002" in active and "S07:050" in active and "S12:050" in active
    assert re.search(r"\bX3\b", stored) and out.endswith("\r\nOK\r\n")
    assert cmd(m, b"AT&V1\r") == b"\r\nERROR\r\n"


def test_z_restores_the_stored_profile_and_ignores_the_rest_of_the_line():
    m = quiet_modem()
    cmd(m, b"ATX2S7=30&W\r")
    cmd(m, b"ATX0S7=99L3\r")
    assert cmd(m, b"ATZX4\r") == b"\r\nOK\r\n"
    assert (m.option("X"), m.s_register(7), m.option("L")) == (2, 30, 2)
    assert cmd(m, b"ATZ2\r") == b"\r\nERROR\r\n"


def test_factory_defaults():
    m = quiet_modem()
    cmd(m, b"ATX0V0S7=99&C0\r")
    assert cmd(m, b"AT&F\r") == b"\r\nOK\r\n"  # echo was off while the line came in
    assert (m.option("X"), m.option("V"), m.s_register(7)) == (4, 1, 50)
    assert (m.option("&C"), m.option("E")) == (1, 1)


def test_options_an_init_string_uses_are_accepted():
    m = quiet_modem()
    assert cmd(m, b"AT&F&C1&D2&K3\\N3%C1L0M0B0N1W0Y0&G0&R1&S0\\Q3&Y0&W0\r") == b"\r\nOK\r\n"
    wvdial = b"ATQ0 V1 E1 S0=0 &C1 &D2 +FCLASS=0\r"  # wvdial's init string
    assert cmd(m, wvdial) == wvdial + b"\r\nOK\r\n"  # &F turned echo back on
    assert cmd(m, b"AT&K2\r") == b"AT&K2\r\r\nERROR\r\n"


def test_extended_commands():
    m = quiet_modem(manufacturer="ACME", model="Dialer 288", revision="2.1")
    assert cmd(m, b"AT+GMI\r") == b"\r\nACME\r\n\r\nOK\r\n"
    assert cmd(m, b"AT+GMM;+GMR\r") == b"\r\nDialer 288\r\n\r\n2.1\r\n\r\nOK\r\n"
    assert cmd(m, b"AT+FCLASS?\r") == b"\r\n0\r\n\r\nOK\r\n"
    assert cmd(m, b"AT+FCLASS=0\r") == b"\r\nOK\r\n"
    assert cmd(m, b"AT+FCLASS=1\r") == b"\r\nERROR\r\n"  # no fax
    assert cmd(m, b"AT+GCAP\r") == b"\r\n+GCAP: +FCLASS\r\n\r\nOK\r\n"
    assert cmd(m, b"AT+NOPE\r") == b"\r\nERROR\r\n"


def test_tone_and_pulse_defaults():
    m = quiet_modem()
    assert cmd(m, b"ATP\r") == b"\r\nOK\r\n"
    cmd(m, b"ATD5551234\r")
    assert dial_event(m).method == "pulse"
    m.carrier_lost(1.0)
    assert cmd(m, b"ATT\r", 2.0) == b"\r\nNO CARRIER\r\n\r\nOK\r\n"
    cmd(m, b"ATD5551234\r", 2.0)
    assert dial_event(m).method == "tone"


# ---------------------------------------------------------------------------
# Dialing


def dial_event(m: HayesModem) -> DialRequested:
    dials = [e for e in m.events() if isinstance(e, DialRequested)]
    assert len(dials) == 1
    return dials[0]


@pytest.mark.parametrize(
    ("line_", "number", "method", "dial_string"),
    [
        (b"ATDT5551234\r", "5551234", "tone", "5551234"),
        (b"ATDP5551234\r", "5551234", "pulse", "5551234"),
        (b"ATD 555-1234\r", "5551234", "tone", "555-1234"),
        (b"atdt (555) 123-4567\r", "5551234567", "tone", "(555) 123-4567"),
        (b"ATDT*70W9,555#!@1\r", "*709555#1", "tone", "*70W9,555#!@1"),
        (b"ATDT9P5551234\r", "95551234", "pulse", "9P5551234"),
        (b"ATDT127.0.0.1:2323\r", "127.0.0.1:2323", "tone", "127.0.0.1:2323"),
        (b"ATDT bbs.Example.COM:23 \r", "bbs.Example.COM:23", "tone", "bbs.Example.COM:23"),
        (b"ATD\r", "", "tone", ""),
    ],
)
def test_dial_strings(line_, number, method, dial_string):
    m = quiet_modem()
    assert cmd(m, line_, 10.0) == b""  # no reply until the line reports
    ev = dial_event(m)
    assert (ev.number, ev.method, ev.dial_string, ev.now) == (number, method, dial_string, 10.0)
    assert m.state is ModemState.DIALING and m.off_hook


def test_comma_pauses_count_in_the_carrier_wait():
    m = quiet_modem()
    cmd(m, b"ATS8=3S7=40\r")
    cmd(m, b"ATDT9,,5551234\r", 1.0)
    assert dial_event(m).pause_s == 6.0
    assert m.next_deadline() == 1.0 + 6.0 + 40


def test_dial_then_wait_for_carrier_s7_runs_out():
    m = quiet_modem()
    cmd(m, b"ATS7=30DT5551234\r", 0.0)
    m.events()
    assert m.next_deadline() == 30.0
    m.on_timer(29.9)
    assert m.state is ModemState.DIALING
    m.on_timer(30.0)
    assert b"".join(m.output(30.0)) == b"\r\nNO CARRIER\r\n"
    assert [type(e) for e in m.events()] == [HangupRequested, ResultCodeIssued]
    assert m.state is ModemState.COMMAND and not m.off_hook


def test_commands_after_d_are_part_of_the_dial_string():
    m = quiet_modem()
    cmd(m, b"ATX3DT5551234\r")
    assert m.option("X") == 3 and dial_event(m).number == "5551234"


def test_semicolon_returns_to_command_state_and_the_digits_wait_for_the_next_d():
    m = quiet_modem()
    assert cmd(m, b"ATDT555;\r") == b"\r\nOK\r\n"
    assert m.state is ModemState.COMMAND and m.off_hook
    assert not [e for e in m.events() if isinstance(e, DialRequested)]
    assert cmd(m, b"ATDT1234;X3\r") == b"\r\nOK\r\n"  # commands may follow ";"
    assert m.option("X") == 3
    cmd(m, b"ATD99\r")
    assert dial_event(m).number == "555123499"
    m.carrier_lost(1.0)
    # ATH forgets the digits.
    cmd(m, b"ATDT555;\r", 2.0)
    cmd(m, b"ATH\r", 2.0)
    assert not m.off_hook
    cmd(m, b"ATDT1\r", 2.0)
    assert dial_event(m).number == "1"


def test_redial_last_number():
    m = quiet_modem()
    assert cmd(m, b"ATDL\r") == b"\r\nERROR\r\n"
    cmd(m, b"ATDP5551234\r")
    m.events()
    m.busy(1.0)
    cmd(m, b"ATDL\r", 2.0)
    ev = dial_event(m)
    assert (ev.number, ev.method) == ("5551234", "pulse")


def test_any_dte_character_aborts_dialing_but_a_line_feed_does_not():
    m = quiet_modem()
    cmd(m, b"ATDT5551234\r\n")
    assert m.state is ModemState.DIALING
    assert cmd(m, b"\n", 1.0) == b""
    assert cmd(m, b"x", 2.0) == b"\r\nNO CARRIER\r\n"
    ev = [e for e in m.events() if isinstance(e, HangupRequested)]
    assert ev == [HangupRequested("aborted", 2.0)]
    assert m.state is ModemState.COMMAND
    # What follows the aborting character is command input again.
    cmd(m, b"ATDT1\r", 3.0)
    assert cmd(m, b"xAT\r", 4.0) == b"\r\nNO CARRIER\r\n\r\nOK\r\n"


def test_dial_or_answer_in_online_command_state_is_an_error():
    m = online()
    m.receive(b"+++", 5.0)
    m.on_timer(6.0)
    assert b"".join(m.output(6.0)) == b"\r\nOK\r\n"
    assert cmd(m, b"ATDT5551234\r", 7.0) == b"\r\nERROR\r\n"
    assert cmd(m, b"ATA\r", 7.0) == b"\r\nERROR\r\n"
    assert m.state is ModemState.ONLINE_COMMAND


# ---------------------------------------------------------------------------
# Call progress and the X table


X_TABLE = {
    # X: (busy, no dial tone, no answer, CONNECT shows the rate)
    0: ("NO CARRIER", "NO CARRIER", "NO CARRIER", False),
    1: ("NO CARRIER", "NO CARRIER", "NO CARRIER", True),
    2: ("NO CARRIER", "NO DIALTONE", "NO CARRIER", True),
    3: ("BUSY", "NO CARRIER", "NO ANSWER", True),
    4: ("BUSY", "NO DIALTONE", "NO ANSWER", True),
}


@pytest.mark.parametrize("x", sorted(X_TABLE))
def test_x_levels(x):
    busy, no_tone, no_answer, rate_shown = X_TABLE[x]
    for report, text in (("busy", busy), ("no_dialtone", no_tone), ("no_answer", no_answer)):
        m = quiet_modem()
        cmd(m, f"ATX{x}DT5551234\r".encode())
        m.events()
        getattr(m, report)(3.0)
        assert b"".join(m.output(3.0)) == f"\r\n{text}\r\n".encode()
        assert m.state is ModemState.COMMAND and not m.off_hook
        assert not [e for e in m.events() if isinstance(e, HangupRequested)]  # the line knows
    m = quiet_modem()
    cmd(m, f"ATX{x}DT5551234\r".encode())
    m.connected(28800, 3.0, PROTOCOL)
    want = f"CONNECT 28800/{PROTOCOL}" if rate_shown else "CONNECT"
    assert b"".join(m.output(3.0)) == f"\r\n{want}\r\n".encode()


@pytest.mark.parametrize(
    ("x", "code_text"),
    [
        (0, {"busy": "3", "no_dialtone": "3", "no_answer": "3"}),
        (4, {"busy": "7", "no_dialtone": "6", "no_answer": "8"}),
    ],
)
def test_numeric_call_progress_codes(x, code_text):
    for report, code in code_text.items():
        m = quiet_modem()
        cmd(m, f"ATV0X{x}DT1\r".encode())
        getattr(m, report)(1.0)
        assert b"".join(m.output(1.0)) == f"{code}\r".encode()


@pytest.mark.parametrize("rate", sorted(CONNECT_CODES))
def test_numeric_connect_codes(rate):
    m = quiet_modem()
    cmd(m, b"ATV0DT1\r")
    m.connected(rate, 1.0, PROTOCOL)
    assert b"".join(m.output(1.0)) == f"{CONNECT_CODES[rate]}\r".encode()
    code = [e for e in m.events() if isinstance(e, ResultCodeIssued)][0]
    assert code.code == CONNECT_CODES[rate] and code.text == f"CONNECT {rate}/{PROTOCOL}"


def test_connect_text_variants():
    m = quiet_modem()
    cmd(m, b"ATV0X0DT1\r")
    m.connected(28800, 1.0)
    assert b"".join(m.output(1.0)) == b"1\r"
    # A rate with no numeric code: code 1; V.90 rates are shown whole.
    m = quiet_modem()
    cmd(m, b"ATDT1\r")
    m.connected(53333.33, 1.0, "V90")
    assert b"".join(m.output(1.0)) == b"\r\nCONNECT 53333/V90\r\n"
    assert [e.code for e in m.events() if isinstance(e, ResultCodeIssued)] == [1]
    # \V0: the rate only; no protocol from the driver: the rate only.
    m = quiet_modem()
    cmd(m, b"AT\\V0DT1\r")
    m.connected(14400, 1.0, "ARQ")
    assert b"".join(m.output(1.0)) == b"\r\nCONNECT 14400\r\n"
    m = quiet_modem()
    cmd(m, b"ATDT1\r")
    m.connected(2400, 1.0)
    assert b"".join(m.output(1.0)) == b"\r\nCONNECT 2400\r\n"
    # The format is the driver's choice.
    m = quiet_modem(connect_format="CONNECT {rate} {protocol}")
    cmd(m, b"ATDT1\r")
    m.connected(33600, 1.0, "V42BIS")
    assert b"".join(m.output(1.0)) == b"\r\nCONNECT 33600 V42BIS\r\n"
    with pytest.raises(KeyError):
        HayesModem(connect_format="CONNECT {speed}")


def test_call_progress_outside_a_call_is_ignored():
    m = quiet_modem()
    for report in (m.busy, m.no_answer, m.no_dialtone, m.carrier_lost, m.carrier_restored):
        report(1.0)
    m.connected(28800, 1.0)
    assert m.output(1.0) == [] and m.events() == [] and m.state is ModemState.COMMAND


def test_training_failure_is_no_carrier():
    m = quiet_modem()
    cmd(m, b"ATDT1\r")
    m.events()
    m.carrier_lost(20.0)
    assert b"".join(m.output(20.0)) == b"\r\nNO CARRIER\r\n"
    assert results(m.events()) == ["NO CARRIER"]


# ---------------------------------------------------------------------------
# Answering: RING, RI, S0, S1, ATA


def test_ring_ri_and_s1():
    m = quiet_modem()
    m.ring(10.0)
    assert b"".join(m.output(10.0)) == b"\r\nRING\r\n"
    assert m.ri and m.s_register(1) == 1
    ev = m.events()
    assert ControlLinesChanged(dcd=False, dsr=True, cts=True, ri=True, now=10.0) in ev
    m.on_timer(12.0)
    assert not m.ri
    assert ControlLinesChanged(dcd=False, dsr=True, cts=True, ri=False, now=12.0) in m.events()
    m.ring(16.0)
    assert m.s_register(1) == 2
    m.on_timer(24.0)  # eight seconds without a ring clear S1
    assert m.s_register(1) == 0 and m.next_deadline() is None


def test_auto_answer_on_the_s0th_ring():
    m = quiet_modem()
    cmd(m, b"ATS0=2\r")
    m.events()
    m.ring(0.0)
    assert m.state is ModemState.COMMAND
    m.ring(6.0)
    ev = m.events()
    assert results(ev) == ["RING", "RING"]
    assert AnswerRequested(6.0) in ev
    assert m.state is ModemState.ANSWERING and not m.ri and m.s_register(1) == 0
    m.connected(26400, 9.0, PROTOCOL)
    assert b"CONNECT 26400" in b"".join(m.output(9.0))
    assert m.dcd


def test_no_auto_answer_while_dtr_is_off_with_d2():
    m = quiet_modem()
    cmd(m, b"ATS0=1\r")
    m.set_dtr(False, 0.0)
    m.ring(1.0)
    assert m.state is ModemState.COMMAND
    cmd(m, b"AT&D0\r", 2.0)
    m.ring(7.0)
    assert m.state is ModemState.ANSWERING


def test_ata_answers_and_s7_limits_the_wait():
    m = quiet_modem()
    m.ring(0.0)
    assert cmd(m, b"ATA\r", 1.0) == b"\r\nRING\r\n"
    assert AnswerRequested(1.0) in m.events()
    assert m.state is ModemState.ANSWERING
    m.on_timer(51.0)
    assert b"".join(m.output(51.0)) == b"\r\nNO CARRIER\r\n"
    assert HangupRequested("no_carrier", 51.0) in m.events()
    assert cmd(m, b"ATA1\r", 52.0) == b"\r\nERROR\r\n"


def test_rings_are_ignored_off_hook():
    m = quiet_modem()
    assert cmd(m, b"ATH1\r") == b"\r\nOK\r\n"
    assert m.off_hook
    m.ring(1.0)
    assert m.output(1.0) == [] and not m.ri
    assert cmd(m, b"ATH0\r", 2.0) == b"\r\nOK\r\n"
    assert not m.off_hook
    assert not [e for e in m.events() if isinstance(e, HangupRequested)]  # there was no call
    assert cmd(m, b"ATH2\r", 2.0) == b"\r\nERROR\r\n"


# ---------------------------------------------------------------------------
# Online: data both ways, +++, ATO, ATH, carrier loss


def test_online_data_passes_both_ways():
    m = online()
    m.receive(b"\x00\xffAT\r+", 2.0)
    assert line(m) == b"\x00\xffAT\r+"
    m.line_receive(b"login: ", 2.5)
    assert b"".join(m.output(2.5)) == b"login: "
    assert m.octets_to_line == 6 and m.octets_to_dte > 7


def test_escape_with_guard_times():
    m = online()  # CONNECT at t=1; S12=50: one second
    m.receive(b"data", 2.0)
    m.receive(b"+++", 3.0)
    assert line(m) == b"data" and m.next_deadline() == 4.0
    m.on_timer(3.99)
    assert m.state is ModemState.ONLINE_DATA
    m.on_timer(4.0)
    assert m.state is ModemState.ONLINE_COMMAND
    assert b"".join(m.output(4.0)) == b"\r\nOK\r\n"
    assert line(m) == b""  # the escape never reaches the line
    assert m.dcd and m.off_hook  # the call is still up


def test_escape_characters_one_by_one_each_within_the_guard_time():
    m = online()
    for t in (5.0, 5.5, 5.75):
        m.receive(b"+", t)
    m.on_timer(6.5)
    assert m.state is ModemState.ONLINE_DATA
    m.on_timer(6.75)
    assert m.state is ModemState.ONLINE_COMMAND and line(m) == b""


def test_plus_plus_plus_inside_data_is_data():
    m = online()
    m.receive(b"a+++b", 5.0)
    m.receive(b"x", 6.5)
    m.receive(b"+++", 6.6)  # no guard time before it
    m.on_timer(10.0)
    assert m.state is ModemState.ONLINE_DATA
    assert line(m) == b"a+++bx+++"


def test_data_right_after_the_escape_cancels_it():
    m = online()
    m.receive(b"+++", 5.0)
    m.receive(b"ok", 5.5)  # before the guard time after
    assert m.state is ModemState.ONLINE_DATA and line(m) == b"+++ok"
    assert m.next_deadline() is None


def test_a_fourth_plus_cancels():
    m = online()
    m.receive(b"++", 5.0)
    m.receive(b"+", 5.2)
    m.receive(b"+", 5.4)
    assert line(m) == b"++++"
    m.on_timer(7.0)
    assert m.state is ModemState.ONLINE_DATA
    m.receive(b"++++", 9.0)
    m.on_timer(11.0)
    assert m.state is ModemState.ONLINE_DATA and line(m) == b"++++"


def test_slow_plusses_are_data():
    m = online()
    m.receive(b"+", 5.0)
    m.on_timer(6.0)  # a second passes: the lone "+" is data after all
    assert line(m) == b"+"
    m.receive(b"+", 6.5)
    m.receive(b"+", 8.0)
    m.on_timer(20.0)
    assert line(m) == b"++" and m.state is ModemState.ONLINE_DATA


def test_escape_needs_silence_before_it_counted_from_connect():
    m = online()  # CONNECT at t=1.0
    m.receive(b"+++", 1.5)
    m.on_timer(5.0)
    assert m.state is ModemState.ONLINE_DATA and line(m) == b"+++"


def test_late_input_counts_as_if_the_timer_had_fired():
    m = online()
    m.receive(b"+++", 5.0)
    # The driver feeds the next octets late, without calling on_timer first.
    m.receive(b"ATI0\r", 7.0)
    assert m.state is ModemState.ONLINE_COMMAND
    assert b"".join(m.output(7.0)) == b"\r\nOK\r\n\r\nDIALSIM\r\n\r\nOK\r\n"


def test_escape_character_and_guard_time_registers():
    m = quiet_modem()
    cmd(m, b"ATS2=126S12=25\r")  # "~", half a second
    online(m)
    m.receive(b"+++", 5.0)
    m.on_timer(6.0)
    assert m.state is ModemState.ONLINE_DATA
    m.receive(b"~~~", 7.0)
    assert m.next_deadline() == 7.5
    m.on_timer(7.5)
    assert m.state is ModemState.ONLINE_COMMAND and line(m) == b"+++"
    for setting in (b"ATS2=200\r", b"ATS2=43S12=0\r"):  # no escape at all
        m = quiet_modem()
        cmd(m, setting)
        online(m)
        m.receive(b"+++", 5.0)
        m.on_timer(10.0)
        assert m.state is ModemState.ONLINE_DATA and line(m) == b"+++"


def test_ato_returns_online_and_delivers_line_data_held_meanwhile():
    m = online()
    m.receive(b"+++", 5.0)
    m.on_timer(6.0)
    m.output(6.0)
    m.line_receive(b"held ", 6.5)
    m.line_receive(b"data", 6.6)
    assert m.output(6.6) == []
    assert cmd(m, b"ATO\r", 7.0) == f"\r\nCONNECT 28800/{PROTOCOL}\r\nheld data".encode()
    assert m.state is ModemState.ONLINE_DATA
    assert cmd(m, b"ATO\r", 8.0) == b""  # online: that was data
    assert line(m) == b"ATO\r"


def test_ato_without_a_call_is_an_error():
    m = quiet_modem()
    assert cmd(m, b"ATO\r") == b"\r\nERROR\r\n"


def test_ath_in_online_command_state_hangs_up():
    m = online()
    m.receive(b"+++", 5.0)
    m.on_timer(6.0)
    assert b"".join(m.output(6.0)) == b"\r\nOK\r\n"
    m.events()
    assert cmd(m, b"ATH\r", 7.0) == b"\r\nOK\r\n"
    assert HangupRequested("command", 7.0) in m.events()
    assert m.state is ModemState.COMMAND and not m.dcd and not m.off_hook


def test_atz_in_online_command_state_hangs_up():
    m = online()
    m.receive(b"+++", 5.0)
    m.on_timer(6.0)
    m.events()
    assert cmd(m, b"ATZ\r", 7.0).endswith(b"\r\nOK\r\n")
    assert HangupRequested("command", 7.0) in m.events()
    assert m.state is ModemState.COMMAND


def test_carrier_loss_waits_s10_then_no_carrier_and_dcd_drops():
    m = online()
    assert m.dcd
    m.carrier_lost(10.0)
    assert not m.dcd  # &C1: DCD follows the carrier at once
    assert ControlLinesChanged(dcd=False, dsr=True, cts=True, ri=False, now=10.0) in m.events()
    t = m.next_deadline()
    assert t == pytest.approx(11.4)  # S10 = 14 tenths
    m.on_timer(t)
    assert b"".join(m.output(t)) == b"\r\nNO CARRIER\r\n"
    assert HangupRequested("carrier_lost", t) in m.events()
    assert m.state is ModemState.COMMAND


def test_carrier_back_within_s10_keeps_the_call():
    m = online()
    m.carrier_lost(10.0)
    m.carrier_restored(11.0)
    assert m.dcd and m.next_deadline() is None
    m.on_timer(20.0)
    assert m.state is ModemState.ONLINE_DATA and m.output(20.0) == []


def test_s10_255_never_hangs_up_by_itself():
    m = quiet_modem()
    cmd(m, b"ATS10=255\r")
    online(m)
    m.carrier_lost(10.0)
    assert m.next_deadline() is None and m.state is ModemState.ONLINE_DATA and not m.dcd


def test_carrier_loss_in_online_command_state():
    m = online()
    m.receive(b"+++", 5.0)
    m.on_timer(6.0)
    m.output(6.0)
    m.carrier_lost(7.0)
    m.on_timer(9.0)
    assert b"".join(m.output(9.0)) == b"\r\nNO CARRIER\r\n"
    assert m.state is ModemState.COMMAND


def test_pending_escape_characters_go_to_the_line_when_the_call_ends():
    m = online()
    m.receive(b"++", 5.0)
    m.carrier_lost(5.1)
    m.on_timer(6.6)
    assert line(m) == b"++"


def test_line_data_with_no_call_is_discarded_and_counted():
    m = quiet_modem()
    m.line_receive(b"noise", 1.0)
    assert m.output(1.0) == [] and m.octets_discarded == 5


# ---------------------------------------------------------------------------
# Control circuits: &C, &S, &D


def test_dcd_with_c0_and_c1():
    m = quiet_modem()
    assert not m.dcd
    cmd(m, b"AT&C0\r")
    assert m.dcd
    assert ControlLinesChanged(dcd=True, dsr=True, cts=True, ri=False, now=0.0) in m.events()
    online(m)
    m.carrier_lost(3.0)
    assert m.dcd  # &C0: always on
    m = quiet_modem()
    online(m)
    assert m.dcd


def test_dsr_with_s0_and_s1():
    m = quiet_modem()
    assert m.dsr
    cmd(m, b"AT&S1\r")
    assert not m.dsr
    online(m)
    assert m.dsr and m.cts
    m.carrier_lost(3.0)
    m.on_timer(5.0)
    assert not m.dsr


def test_dtr_drop_with_d0_is_ignored():
    m = quiet_modem()
    cmd(m, b"AT&D0\r")
    online(m)
    m.set_dtr(False, 5.0)
    assert m.state is ModemState.ONLINE_DATA and m.output(5.0) == []


def test_dtr_drop_with_d1_goes_to_online_command_state():
    m = quiet_modem()
    cmd(m, b"AT&D1\r")
    online(m)
    m.receive(b"+", 5.0)  # a pending escape character is data after all
    m.set_dtr(False, 5.1)
    assert m.state is ModemState.ONLINE_COMMAND
    assert b"".join(m.output(5.1)) == b"\r\nOK\r\n" and line(m) == b"+"
    m.set_dtr(True, 6.0)
    assert cmd(m, b"ATO\r", 6.5).startswith(b"\r\nCONNECT 28800")


def test_dtr_drop_with_d2_hangs_up():
    m = online()
    m.set_dtr(False, 5.0)
    assert b"".join(m.output(5.0)) == b"\r\nNO CARRIER\r\n"
    assert HangupRequested("dtr", 5.0) in m.events()
    assert m.state is ModemState.COMMAND and not m.dcd and not m.dtr
    # Also while dialing.
    m.set_dtr(True, 6.0)
    cmd(m, b"ATDT1\r", 6.0)
    m.set_dtr(False, 7.0)
    assert m.state is ModemState.COMMAND


def test_dtr_drop_with_d3_hangs_up_and_resets():
    m = quiet_modem()
    cmd(m, b"AT&D3X4&W\r")
    cmd(m, b"ATX1\r")
    online(m)
    m.set_dtr(False, 5.0)
    assert m.state is ModemState.COMMAND and m.option("X") == 4


# ---------------------------------------------------------------------------
# The parser fed all at once, one byte at a time, and with trailing data (h11 style)

SCRIPT = (
    b"noise ATZ\rAT E0 V1\rATS7=45S0?\rATI3\rAT&V\rat x4 &c1 &d2\rATJ\rA/"
    b"ATX3\x081\rAT+GMI;+FCLASS=?\rATV0\rATQ1\rATS99?\rATQ0V1\rATDT555;\rATH\r"
)


def feed(data: bytes, split: int | None) -> tuple[bytes, list[ModemEvent], HayesModem]:
    m = HayesModem()
    if split is None:
        m.receive(data, 1.0)
    else:
        for i in range(0, len(data), split):
            m.receive(data[i : i + split], 1.0)
    return b"".join(m.output(1.0)), m.events(), m


@pytest.mark.parametrize("split", [1, 2, 3, 7])
def test_parser_any_chunking_same_result(split):
    whole, whole_events, _ = feed(SCRIPT, None)
    parts, part_events, _ = feed(SCRIPT, split)
    assert parts == whole
    assert part_events == whole_events
    assert results(whole_events) == ["OK"] * 6 + ["ERROR"] * 2 + ["OK"] * 4 + ["ERROR"] + ["OK"] * 3


def test_parser_trailing_data_after_a_command_that_goes_online():
    for split in (None, 1):
        m = online()
        m.receive(b"+++", 5.0)
        m.on_timer(6.0)
        m.output(6.0)
        stream = b"ATO\rpayload+++ATH\r"
        if split is None:
            m.receive(stream, 7.0)
        else:
            for i in range(len(stream)):
                m.receive(stream[i : i + 1], 7.0)
        assert m.state is ModemState.ONLINE_DATA
        assert line(m) == b"payload+++ATH\r"


def test_parser_trailing_partial_line_waits_for_its_terminator():
    m = quiet_modem()
    assert cmd(m, b"AT\rATX") == b"\r\nOK\r\n"
    assert cmd(m, b"2\r", 1.0) == b"\r\nOK\r\n" and m.option("X") == 2
    assert cmd(m, b"A", 2.0) == b""
    assert cmd(m, b"T\r", 3.0) == b"\r\nOK\r\n"


# ---------------------------------------------------------------------------
# Debian's chat(8): each send string followed by CR; each expect a substring


def chat(m: HayesModem, script: list[tuple[str, str]], line) -> tuple[str, list[bytes]]:
    """Replay a chat script of (expect, send) pairs the way chat(8) runs it.

    chat sends each string followed by CR, waits until the expect string has
    appeared in what came back since its last send, and gives up on an ABORT
    string (here BUSY, NO CARRIER, NO DIALTONE, ERROR).  ``line(m, ev)`` plays
    the telephone network: it returns ``(delay, report)`` pairs for a
    DialRequested.  Returns how the script ended and what went to the line.
    """
    now, pending = 0.0, []
    for expect, send in script:
        seen = b""
        while expect.encode() not in seen:
            now = round(now + 0.1, 1)
            for due in [p for p in pending if p[0] <= now]:
                pending.remove(due)
                due[1](now)
            d = m.next_deadline()
            if d is not None and d <= now:
                m.on_timer(now)
            seen += b"".join(m.output(now))
            for ev in m.events():
                if isinstance(ev, DialRequested):
                    pending += [(now + delay, report) for delay, report in line(m, ev)]
            for abort in (b"BUSY", b"NO CARRIER", b"NO DIALTONE", b"ERROR"):
                if abort in seen:
                    return abort.decode(), []
            if now > 120:
                return "TIMEOUT", []
        m.receive(send.encode() + b"\r", now)
    return "OK", m.line_output(now)


def test_chat_script_dials_and_gets_connect():
    def line_(m, ev):
        assert (ev.number, ev.method) == ("5551234", "tone")
        return [(20.0, lambda now: m.connected(28800, now, PROTOCOL))]  # 20 s to train

    m = HayesModem()
    # chat '' ATZ OK ATDT5551234 CONNECT ''
    ended, to_line = chat(m, [("", "ATZ"), ("OK", "ATDT5551234"), ("CONNECT", "")], line_)
    assert ended == "OK"
    assert to_line == [b"\r"]  # chat's last, empty send string: a CR for the ISP's login
    assert m.state is ModemState.ONLINE_DATA and m.dcd


def test_chat_script_with_abort_strings_sees_busy():
    m = HayesModem()
    script = [("", "AT&F&C1&D2"), ("OK", "ATDT5551234"), ("CONNECT", "")]
    assert chat(m, script, lambda m, ev: [(5.0, m.busy)])[0] == "BUSY"


def test_chat_script_ends_in_no_carrier_when_nobody_answers():
    m = HayesModem()
    script = [("", "ATZ"), ("OK", "ATS7=30DT5551234"), ("CONNECT", "")]
    assert chat(m, script, lambda m, ev: [])[0] == "NO CARRIER"


# ---------------------------------------------------------------------------
# Hypothesis: the escape rules against an independent model

GUARD = 1.0  # S12=50
GAPS = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 2.0])
CHUNKS = st.one_of(
    st.sampled_from([b"+", b"++", b"+++", b"+++", b"++++", b"a", b"a+", b"+a", b"\r", b"ATH\r"]),
    st.sampled_from([b"+", b"++", b"+++"]),
    st.binary(min_size=1, max_size=4),
)


def escape_model(t_connect: float, chunks: list[tuple[float, bytes]]) -> tuple[bytes, int]:
    """What reaches the line, and how many escapes: an escape is a run of chunks
    of only "+" totalling three, after silence of the guard time, each within
    the guard time of the previous, and followed by silence of the guard time."""
    out, escapes, prev, i, n = [], 0, t_connect, 0, len(chunks)

    def plus(c: bytes) -> bool:
        return c.count(b"+") == len(c)

    while i < n:
        t, c = chunks[i]
        if plus(c) and t - prev >= GUARD:
            total, j = len(c), i
            while (
                total < 3
                and j + 1 < n
                and plus(chunks[j + 1][1])
                and chunks[j + 1][0] - chunks[j][0] < GUARD
            ):
                j += 1
                total += len(chunks[j][1])
            if total == 3 and (j + 1 == n or chunks[j + 1][0] - chunks[j][0] >= GUARD):
                escapes += 1
                prev = chunks[j][0] + GUARD  # the escape's OK; the driver sends ATO at once
                i = j + 1
                continue
        out.append(c)
        prev = t
        i += 1
    return b"".join(out), escapes


@given(st.lists(st.tuples(GAPS, CHUNKS), max_size=25))
@settings(max_examples=400, deadline=None)
def test_escape_rules_match_the_model(steps):
    m = online()  # CONNECT at t=1
    t = 1.0
    chunks, escapes = [], 0

    def advance(to: float) -> None:
        nonlocal escapes
        d = m.next_deadline()
        while d is not None and d <= to:
            m.on_timer(d)
            if m.state is ModemState.ONLINE_COMMAND:
                escapes += 1
                m.receive(b"ATO\r", d)
            d = m.next_deadline()

    for gap, chunk in steps:
        t += gap
        advance(t)
        m.receive(chunk, t)
        chunks.append((t, chunk))
    advance(t + 10.0)
    want, want_escapes = escape_model(1.0, chunks)
    assert line(m) == want
    assert escapes == want_escapes


# ---------------------------------------------------------------------------
# Hypothesis: arbitrary DTE input, line events and time steps

COMMANDS = [
    b"AT\r", b"ATZ\r", b"AT&F\r", b"ATE0\r", b"ATE1\r", b"ATV0\r", b"ATV1\r", b"ATQ1\r",
    b"ATQ0\r", b"ATX0\r", b"ATX2\r", b"ATX4\r", b"ATS0=1\r", b"ATS0=0\r", b"ATS7=5\r",
    b"ATS10=255\r", b"ATS12=10\r", b"ATS2=200\r", b"ATS2=43\r", b"ATI\r", b"ATI3\r",
    b"ATH\r", b"ATH1\r", b"ATA\r", b"ATO\r", b"ATDT5551234\r", b"ATDP1,2\r",
    b"ATDT127.0.0.1:2323\r", b"ATD555;\r", b"ATDL\r", b"AT&C0\r", b"AT&C1\r", b"AT&D0\r",
    b"AT&D1\r", b"AT&D2\r", b"AT&D3\r", b"AT&S1\r", b"AT&V\r", b"AT&W\r", b"A/", b"+",
    b"++", b"+++", b"++++", b"ATS5=65\r", b"AT\x08\r", b"ATJ\r",
]  # fmt: skip
RATES = st.sampled_from([2400.0, 14400.0, 28800.0, 33600.0, 53333.33])
CONNECT_TEXT = re.compile(r"CONNECT( (\d+)(.*))?\Z")


class ModemMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = HayesModem()
        self.t = 0.0

    def advance(self, dt: float) -> None:
        self.t += dt
        d = self.m.next_deadline()
        while d is not None and d <= self.t:
            self.m.on_timer(d)
            self.check_events()
            d = self.m.next_deadline()

    def check_events(self) -> None:
        for ev in self.m.events():
            assert isinstance(ev, ModemEvent)
            if isinstance(ev, ResultCodeIssued):
                match = CONNECT_TEXT.match(ev.text)
                if match and match.group(1):
                    assert ev.code == CONNECT_CODES.get(int(match.group(2)), 1)
                else:
                    assert RESULT_TEXT[ev.code] == ev.text
            elif isinstance(ev, DialRequested):
                assert ev.method in ("tone", "pulse") and ev.pause_s >= 0
            elif isinstance(ev, HangupRequested):
                assert ev.reason in ("command", "dtr", "no_carrier", "aborted", "carrier_lost")

    @rule(data=st.one_of(st.sampled_from(COMMANDS), st.binary(max_size=16)), dt=GAPS)
    def dte(self, data, dt):
        self.advance(dt)
        was_online = self.m.state is ModemState.ONLINE_DATA
        self.m.receive(data, self.t)
        self.check_events()
        out = self.m.line_output(self.t)
        if was_online and data.count(b"+") != len(data):
            # Data that cannot be an escape goes straight on, after any held "+".
            sent = b"".join(out)
            assert sent.endswith(data) and sent[: len(sent) - len(data)].count(b"+") == len(
                sent
            ) - len(data)

    @rule(dt=GAPS, rate=RATES, protocol=st.sampled_from(["", PROTOCOL]))
    def connected(self, dt, rate, protocol):
        self.advance(dt)
        self.m.connected(rate, self.t, protocol)

    @rule(
        dt=GAPS,
        report=st.sampled_from(
            ["busy", "no_answer", "no_dialtone", "carrier_lost", "carrier_restored", "ring"]
        ),
    )
    def call_progress(self, dt, report):
        self.advance(dt)
        getattr(self.m, report)(self.t)

    @rule(dt=GAPS, on=st.booleans())
    def dtr(self, dt, on):
        self.advance(dt)
        self.m.set_dtr(on, self.t)

    @rule(dt=GAPS, data=st.binary(min_size=1, max_size=16))
    def from_line(self, dt, data):
        self.advance(dt)
        online_before = self.m.state is ModemState.ONLINE_DATA
        self.m.line_receive(data, self.t)
        if online_before:
            assert self.m.output(self.t)[-1] == data

    @precondition(lambda self: self.m.state is ModemState.COMMAND)
    @rule(dt=GAPS, rate=RATES, via=st.sampled_from([b"ATDT5551234\r", b"ATA\r", b"ring"]))
    def call(self, dt, rate, via):
        """A whole call set-up, so that the online states get their share of steps."""
        self.advance(dt)
        if via == b"ring":
            self.m.ring(self.t)
            self.m.receive(b"ATA\r", self.t)
        else:
            self.m.receive(via, self.t)
        self.advance(1.0)
        self.m.connected(rate, self.t, PROTOCOL)

    @precondition(lambda self: self.m.state is ModemState.ONLINE_DATA)
    @rule()
    def escape(self):
        self.advance(1.5)
        self.m.receive(b"+++", self.t)
        self.advance(1.5)

    @rule(dt=st.floats(0.0, 120.0))
    def wait(self, dt):
        self.advance(dt)

    @invariant()
    def state_is_valid(self):
        m = self.m
        assert m.state in ModemState
        d = m.next_deadline()
        assert d is None or d >= 0.0
        assert (m.dcd, m.dsr, m.cts, m.ri) == (
            m.option("&C") == 0
            or (m.state in (ModemState.ONLINE_DATA, ModemState.ONLINE_COMMAND) and m.carrier),
            m.option("&S") == 0 or m.state in (ModemState.ONLINE_DATA, ModemState.ONLINE_COMMAND),
            True,
            m.ri,
        )
        if m.state is not ModemState.COMMAND:
            assert m.off_hook
        for chunk in m.output(self.t):
            assert isinstance(chunk, bytes) and chunk
        self.check_events()


ModemMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_modem_state_machine = ModemMachine.TestCase
