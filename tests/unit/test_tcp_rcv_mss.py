"""RFC 1122 4.2.3.2: ACK at least every second full-sized segment, where
"full-sized" is the sender's segment size, even when it is below our MSS."""

from dialsim.proto.tcp import TcpConnection
from dialsim.proto.tcp_segment import parse_segment


def _pair():
    a = TcpConnection("10.0.0.1", 110, "10.0.0.2", 4000, iss=1000, mss=1460)
    b = TcpConnection("10.0.0.2", 4000, "10.0.0.1", 110, iss=5000, mss=512)
    a.listen()
    b.connect(0.0)
    for _ in range(4):
        for seg in b.output(0.0):
            a.receive(seg, 0.0)
        for seg in a.output(0.0):
            b.receive(seg, 0.0)
    assert a.state == b.state == "ESTABLISHED"
    a.events()
    b.events()
    return a, b


def test_ack_every_second_segment_of_a_smaller_mss_peer():
    a, b = _pair()
    b.send(b"x" * 1024)
    segs = b.output(0.0)
    assert [len(parse_segment(s).data) for s in segs] == [512, 512]
    for s in segs:
        a.receive(s, 0.01)
    acks = a.output(0.01)
    # ACKed at once, not after the 200 ms delayed-ACK timer.
    assert acks and parse_segment(acks[-1]).ack == (5000 + 1 + 1024) % 2**32


def test_single_segment_still_delayed():
    a, b = _pair()
    b.send(b"y" * 512)
    for s in b.output(0.0):
        a.receive(s, 0.0)
    assert a.output(0.0) == []
    assert a.next_deadline() is not None and a.next_deadline() <= 0.2 + 1e-9
