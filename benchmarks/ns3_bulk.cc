// A bulk TCP transfer over a dial-up-speed point-to-point link, in ns-3 (3.37).
//
// The ns-3 half of benchmarks/vs_ns3.py: two nodes joined by a point-to-point
// link of --rate bit/s with --delay one-way delay, TCP NewReno (no SACK, no
// timestamps, no window scaling, a 16 KiB receive buffer and 1460-octet
// segments, like dialsim's 1990s stack), and a BulkSend application sending
// --bytes to a PacketSink.  It times Simulator::Run() on the wall clock and
// prints one line:
//
//   ns3 bytes=N simulated_s=S wall_ms=W
//
// where S is the simulated time at which the sink had every byte.  Built by
// vs_ns3.py with g++ and pkg-config against Debian's libns3-dev; written for
// this project, no ns-3 sources are copied here.

#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

using namespace ns3;

namespace
{
uint64_t g_received = 0;
uint64_t g_target = 0;
double g_done_at = -1.0;

void
OnReceive(Ptr<const Packet> packet, const Address&)
{
    g_received += packet->GetSize();
    if (g_done_at < 0 && g_received >= g_target)
    {
        g_done_at = Simulator::Now().GetSeconds();
        Simulator::Stop();
    }
}
} // namespace

int
main(int argc, char* argv[])
{
    uint64_t bytes = 1 << 20;
    std::string rate = "28800bps";
    std::string delay = "62ms";
    uint32_t mtu = 1500;
    CommandLine cmd;
    cmd.AddValue("bytes", "octets the BulkSend sends", bytes);
    cmd.AddValue("rate", "the link's data rate", rate);
    cmd.AddValue("delay", "the link's one-way delay", delay);
    cmd.AddValue("mtu", "the link's MTU", mtu);
    cmd.Parse(argc, argv);
    g_target = bytes;

    Config::SetDefault("ns3::TcpL4Protocol::SocketType", TypeIdValue(TcpNewReno::GetTypeId()));
    Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(mtu - 40));
    Config::SetDefault("ns3::TcpSocket::RcvBufSize", UintegerValue(16384));
    Config::SetDefault("ns3::TcpSocket::DelAckCount", UintegerValue(2));
    Config::SetDefault("ns3::TcpSocketBase::Sack", BooleanValue(false));
    Config::SetDefault("ns3::TcpSocketBase::Timestamp", BooleanValue(false));
    Config::SetDefault("ns3::TcpSocketBase::WindowScaling", BooleanValue(false));

    NodeContainer nodes;
    nodes.Create(2);
    PointToPointHelper link;
    link.SetDeviceAttribute("DataRate", StringValue(rate));
    link.SetDeviceAttribute("Mtu", UintegerValue(mtu));
    link.SetChannelAttribute("Delay", StringValue(delay));
    NetDeviceContainer devices = link.Install(nodes);

    InternetStackHelper stack;
    stack.Install(nodes);
    Ipv4AddressHelper addresses;
    addresses.SetBase("10.0.0.0", "255.255.255.0");
    Ipv4InterfaceContainer interfaces = addresses.Assign(devices);

    const uint16_t port = 110;
    BulkSendHelper source("ns3::TcpSocketFactory", InetSocketAddress(interfaces.GetAddress(1), port));
    source.SetAttribute("MaxBytes", UintegerValue(bytes));
    source.Install(nodes.Get(0)).Start(Seconds(0.0));
    PacketSinkHelper sink("ns3::TcpSocketFactory", InetSocketAddress(Ipv4Address::GetAny(), port));
    ApplicationContainer sinks = sink.Install(nodes.Get(1));
    sinks.Start(Seconds(0.0));
    sinks.Get(0)->TraceConnectWithoutContext("Rx", MakeCallback(&OnReceive));

    auto t0 = std::chrono::steady_clock::now();
    Simulator::Run();
    auto t1 = std::chrono::steady_clock::now();
    Simulator::Destroy();
    double wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    std::printf("ns3 bytes=%llu simulated_s=%.3f wall_ms=%.3f\n",
                static_cast<unsigned long long>(g_received), g_done_at, wall_ms);
    return g_received >= bytes ? 0 : 1;
}
