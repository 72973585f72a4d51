//! Compiles `mcp/plugin/v1/plugin.proto` with protox (no system `protoc`) and generates the
//! tonic client and server.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "mcp/plugin/v1/plugin.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["."])?;
    tonic_prost_build::configure()
        .bytes(".mcp.plugin.v1")
        .compile_fds(fds)?;
    Ok(())
}
