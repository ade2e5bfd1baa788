//! Links kiln-node-exporter with `hot-text.ld`, which places the code a scrape runs
//! together (see that file). Linux only: the script is for ELF linkers (lld, GNU ld).

fn main() {
    println!("cargo:rerun-if-changed=hot-text.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = std::path::Path::new(&dir).join("hot-text.ld");
    println!(
        "cargo:rustc-link-arg-bin=kiln-node-exporter=-Wl,-T,{}",
        script.display()
    );
}
