//! Writes the benchmark's JVM answers as files, for scripts/bench/jmx.sh to serve:
//! `namenode.json` (a 2 MB Hadoop /jmx answer) and `kafka-jolokia.json` (50 000 attributes of
//! a Kafka broker as one Jolokia bulk answer).
//!
//!     cargo run --release -p kiln-jmx --example jmx_answers -- DIR

#[path = "../benches/support/mod.rs"]
mod support;

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let dir = std::path::Path::new(&dir);
    std::fs::write(dir.join("namenode.json"), support::namenode(1))?;
    let (kafka, attributes) = support::kafka_broker(234, 24, 1);
    std::fs::write(dir.join("kafka-jolokia.json"), kafka)?;
    eprintln!(
        "wrote namenode.json and kafka-jolokia.json ({attributes} attributes) to {}",
        dir.display()
    );
    Ok(())
}
