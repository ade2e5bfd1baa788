//! Inputs for the benchmarks: a Kafka broker's MBeans and a NameNode-sized Hadoop answer,
//! generated with the shapes real ones have.

#![allow(dead_code)]

use std::fmt::Write as _;

/// A Jolokia bulk answer from a broker with `topics` × `partitions`, values shifted by `tick`
/// (so two ticks differ the way consecutive scrapes do). Returns the text and the number of
/// leaf attributes in it.
pub(crate) fn kafka_broker(topics: usize, partitions: usize, tick: u64) -> (String, usize) {
    let mut beans = String::from("{");
    let mut attributes = 0;
    let mut first = true;
    let mut bean = |name: &str, attrs: &[(&str, String)]| {
        if !first {
            beans.push(',');
        }
        first = false;
        let _ = write!(beans, "\"{name}\":{{");
        for (i, (attr, value)) in attrs.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let _ = write!(beans, "{comma}\"{attr}\":{value}");
        }
        beans.push('}');
        attributes += attrs.len();
    };
    let rates = |count: u64| {
        vec![
            ("Count", count.to_string()),
            ("MeanRate", format!("{}", count as f64 / 3600.0)),
            ("OneMinuteRate", format!("{}", count as f64 / 61.0)),
            ("FiveMinuteRate", format!("{}", count as f64 / 300.0)),
            ("FifteenMinuteRate", format!("{}", count as f64 / 900.0)),
            ("RateUnit", "\"SECONDS\"".to_owned()),
            ("EventType", "\"messages\"".to_owned()),
        ]
    };
    for t in 0..topics {
        let topic = format!("orders-{t}");
        for name in ["MessagesInPerSec", "BytesInPerSec", "BytesOutPerSec"] {
            bean(
                &format!("kafka.server:type=BrokerTopicMetrics,name={name},topic={topic}"),
                &rates(tick * 100 + t as u64),
            );
        }
        for p in 0..partitions {
            for name in ["Size", "NumLogSegments", "LogStartOffset", "LogEndOffset"] {
                bean(
                    &format!("kafka.log:type=Log,name={name},topic={topic},partition={p}"),
                    &[("Value", (tick * 1000 + (t * p) as u64).to_string())],
                );
            }
            for name in [
                "UnderReplicated",
                "InSyncReplicasCount",
                "ReplicasCount",
                "UnderMinIsr",
            ] {
                bean(
                    &format!(
                        "kafka.cluster:type=Partition,name={name},topic={topic},partition={p}"
                    ),
                    &[("Value", ((tick + p as u64) % 3).to_string())],
                );
            }
        }
    }
    for request in [
        "Produce",
        "FetchConsumer",
        "FetchFollower",
        "Metadata",
        "OffsetCommit",
    ] {
        for name in [
            "TotalTimeMs",
            "RequestQueueTimeMs",
            "LocalTimeMs",
            "ResponseSendTimeMs",
        ] {
            bean(
                &format!("kafka.network:type=RequestMetrics,name={name},request={request}"),
                &[
                    ("Count", (tick * 7).to_string()),
                    ("Mean", "1.5".to_owned()),
                    ("50thPercentile", "1.0".to_owned()),
                    ("75thPercentile", "2.0".to_owned()),
                    ("95thPercentile", "4.0".to_owned()),
                    ("99thPercentile", "9.0".to_owned()),
                    ("999thPercentile", "20.0".to_owned()),
                ],
            );
        }
    }
    beans.push('}');
    let text = format!("[{{\"value\":{beans},\"status\":200,\"timestamp\":1700000000}}]");
    (text, attributes)
}

/// A Hadoop `/jmx` answer the size of a busy NameNode's (about 2 MB): many metrics2 beans
/// with tag strings, per-method RPC details, and the long JSON-in-string attributes
/// (`LiveNodes`) that make real answers large.
pub(crate) fn namenode(tick: u64) -> String {
    let mut out = String::from("{\n  \"beans\" : [ ");
    let mut first = true;
    let mut push = |out: &mut String, name: &str, body: &str| {
        if !first {
            out.push_str(", ");
        }
        first = false;
        let _ = write!(
            out,
            "{{\n    \"name\" : \"{name}\",\n    \"modelerType\" : \"{}\"{body}\n  }}",
            name.rsplit('=').next().unwrap_or("")
        );
    };
    let mut live_nodes = String::from("{");
    for n in 0..8000 {
        let comma = if n > 0 { "," } else { "" };
        let _ = write!(
            live_nodes,
            "{comma}\\\"dn-{n}.cluster.internal:9866\\\":{{\\\"infoAddr\\\":\\\"10.0.{}.{}:9864\\\",\\\"lastContact\\\":1,\\\"usedSpace\\\":{},\\\"adminState\\\":\\\"In Service\\\",\\\"capacity\\\":107351072768,\\\"numBlocks\\\":{}}}",
            n / 250,
            n % 250,
            1_000_000 + n,
            5000 + n
        );
    }
    live_nodes.push('}');
    let mut info = String::new();
    let _ = write!(
        info,
        ",\n    \"Total\" : 62725623808,\n    \"Used\" : {},\n    \"PercentUsed\" : 3.918016E-5,\n    \"Safemode\" : \"\",\n    \"LiveNodes\" : \"{live_nodes}\",\n    \"DeadNodes\" : \"{{}}\"",
        24576 + tick
    );
    push(&mut out, "Hadoop:service=NameNode,name=NameNodeInfo", &info);
    let mut fs = String::from(
        ",\n    \"tag.Context\" : \"dfs\",\n    \"tag.HAState\" : \"active\",\n    \"tag.Hostname\" : \"nn1.cluster.internal\"",
    );
    for (i, attr) in [
        "CapacityTotal",
        "CapacityUsed",
        "CapacityRemaining",
        "BlocksTotal",
        "FilesTotal",
        "MissingBlocks",
        "CorruptBlocks",
        "UnderReplicatedBlocks",
        "PendingDeletionBlocks",
        "NumLiveDataNodes",
        "NumDeadDataNodes",
        "TotalLoad",
    ]
    .iter()
    .enumerate()
    {
        let _ = write!(fs, ",\n    \"{attr}\" : {}", tick + i as u64 * 1000);
    }
    push(&mut out, "Hadoop:service=NameNode,name=FSNamesystem", &fs);
    // RpcDetailedActivity: NumOps and AvgTime per RPC method, the bulk of a NameNode's beans.
    for port in [8020, 8022] {
        let mut rpc = String::from(
            ",\n    \"tag.port\" : \"8020\",\n    \"tag.Context\" : \"rpcdetailed\",\n    \"tag.Hostname\" : \"nn1.cluster.internal\"",
        );
        for m in 0..600 {
            let _ = write!(
                rpc,
                ",\n    \"Method{m}NumOps\" : {},\n    \"Method{m}AvgTime\" : {}.25",
                tick * 3 + m,
                m % 17
            );
        }
        push(
            &mut out,
            &format!("Hadoop:service=NameNode,name=RpcDetailedActivityForPort{port}"),
            &rpc,
        );
    }
    // Per-user and per-queue style beans, and the JVM's own.
    for b in 0..300 {
        let mut body = String::from(
            ",\n    \"tag.Context\" : \"ugi\",\n    \"tag.Hostname\" : \"nn1.cluster.internal\"",
        );
        for a in 0..40 {
            let _ = write!(body, ",\n    \"Attribute{a}\" : {}", tick + a * b);
        }
        let _ = write!(
            body,
            ",\n    \"Composite\" : {{\n      \"committed\" : 1,\n      \"max\" : 2,\n      \"used\" : {}\n    }}",
            tick
        );
        push(
            &mut out,
            &format!("Hadoop:service=NameNode,name=Activity{b}"),
            &body,
        );
    }
    out.push_str(" ]\n}\n");
    out
}
