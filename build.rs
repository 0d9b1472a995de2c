//! Compiles the normalized protobuf schemas with protox + prost-build (no system `protoc`).

use std::path::PathBuf;

const FILES: &[&str] = &[
    "trade.proto",
    "level2_book.proto",
    "level2_delta.proto",
    "top_of_book.proto",
    "ticker.proto",
    "funding.proto",
    "open_interest.proto",
    "liquidation.proto",
    "candle.proto",
    "feed_event.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "proto/tickflow/normalized/v2beta1";
    let files: Vec<String> = FILES.iter().map(|f| format!("{dir}/{f}")).collect();
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(&files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("normalized_v2beta1.binpb"),
        prost::Message::encode_to_vec(&fds),
    )?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
