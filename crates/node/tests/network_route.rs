//! `network_route` against the kernel: in a network namespace of its own (veth pair, a
//! multipath BGP route with weights, a route in another table, an IPv6 static route) the
//! exporter serves the series node_exporter serves for them. Setting up the namespace
//! needs `CAP_SYS_ADMIN` and `ip`; where they are missing the test says so and passes.

#![allow(clippy::unwrap_used)]

use std::process::Command;

/// Builds the namespace, starts the exporter in it and scrapes it over the namespace's
/// loopback with bash's `/dev/tcp`. Exit status 77: the namespace could not be built.
const SCRIPT: &str = r#"
set -e
ip link set lo up
ip link add v0 type veth peer name v1 || exit 77
ip link set v0 up
ip link set v1 up
ip addr add 10.0.0.2/24 dev v0
ip addr add 10.0.1.2/24 dev v1
ip route add 172.16.0.0/12 proto bgp metric 20 nexthop via 10.0.0.1 dev v0 weight 1 nexthop via 10.0.1.1 dev v1 weight 3
ip route add 192.168.50.0/24 via 10.0.0.1 table 100
ip -6 addr add 2001:db8::2/64 dev v0 nodad
ip -6 route add 2001:db8:1::/48 via 2001:db8::1 proto static metric 5
"$EXPORTER" --collector.disable-defaults --collector.network_route \
    --web.listen-address 127.0.0.1:9100 2>/dev/null &
exporter=$!
trap 'kill $exporter' EXIT
for _ in $(seq 50); do
    if exec 3<>/dev/tcp/127.0.0.1/9100; then break; fi 2>/dev/null
    sleep 0.1
done
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
timeout 10 cat <&3
"#;

#[test]
fn routes_of_a_namespace_of_our_own() {
    // `timeout`: a namespace that never answers fails the test instead of hanging it.
    let output = match Command::new("timeout")
        .args(["60", "unshare", "--net", "bash", "-c", SCRIPT])
        .env("EXPORTER", env!("CARGO_BIN_EXE_kiln-node-exporter"))
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            eprintln!("skipped: cannot run unshare: {error}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(77) || stderr.contains("unshare failed") {
        eprintln!("skipped: no network namespace with a veth pair here: {stderr}");
        return;
    }
    assert!(output.status.success(), "{stderr}");
    let body = String::from_utf8_lossy(&output.stdout);
    let mut series: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("node_network_route")
                || l.starts_with("node_scrape_collector_success{collector=\"network_route\"}")
        })
        .collect();
    series.sort_unstable();
    assert_eq!(
        series,
        [
            r#"node_network_route_info{dest="10.0.0.0/24",device="v0",gw="",priority="0",proto="kernel",src="10.0.0.2",weight=""} 1"#,
            r#"node_network_route_info{dest="10.0.1.0/24",device="v1",gw="",priority="0",proto="kernel",src="10.0.1.2",weight=""} 1"#,
            r#"node_network_route_info{dest="172.16.0.0/12",device="v0",gw="10.0.0.1",priority="20",proto="bgp",src="",weight="1"} 1"#,
            r#"node_network_route_info{dest="172.16.0.0/12",device="v1",gw="10.0.1.1",priority="20",proto="bgp",src="",weight="3"} 1"#,
            r#"node_network_route_info{dest="192.168.50.0/24",device="v0",gw="10.0.0.1",priority="0",proto="boot",src="",weight=""} 1"#,
            r#"node_network_route_info{dest="2001:db8:1::/48",device="v0",gw="2001:db8::1",priority="5",proto="static",src="",weight=""} 1"#,
            r#"node_network_route_info{dest="2001:db8::/64",device="v0",gw="",priority="256",proto="kernel",src="",weight=""} 1"#,
            r#"node_network_route_info{dest="fe80::/64",device="v0",gw="",priority="256",proto="kernel",src="",weight=""} 1"#,
            r#"node_network_route_info{dest="fe80::/64",device="v1",gw="",priority="256",proto="kernel",src="",weight=""} 1"#,
            r#"node_network_routes{device="v0"} 6"#,
            r#"node_network_routes{device="v1"} 3"#,
            r#"node_scrape_collector_success{collector="network_route"} 1"#,
        ]
    );
}
