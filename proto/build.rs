//! Compiles the `.proto` contracts into Rust, with a file descriptor set for server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-env-changed=PROTOC");
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "gemini_balance/chat/v1/chat.proto",
        "gemini_balance/keys/v1/keys.proto",
        "gemini_balance/config/v1/config.proto",
        "gemini_balance/logging/v1/logging.proto",
        "gemini_balance/files/v1/files.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure()
        // Bodies as `bytes::Bytes`: passed through without copies.
        .bytes(".gemini_balance")
        .file_descriptor_set_path(out_dir.join("gemini_balance_descriptor.bin"))
        .compile_protos(&protos, &["."])?;
    Ok(())
}
