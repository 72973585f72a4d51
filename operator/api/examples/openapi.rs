//! Prints the facade's OpenAPI 3.1 document (the one served at `/api/v1/openapi.json`) as
//! pretty JSON on stdout: `cargo run -p mcp-api --example openapi > openapi.json`.

fn main() -> Result<(), serde_json::Error> {
    println!(
        "{}",
        serde_json::to_string_pretty(&mcp_api::openapi_document())?
    );
    Ok(())
}
