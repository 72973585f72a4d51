//! Prints the facade's OpenAPI 3.1 document (the one served at `/api/v1/openapi.json`) as
//! pretty JSON on stdout: `cargo run -p mcp-api --example openapi > openapi.json`.

fn main() -> Result<(), serde_json::Error> {
    println!("{}", mcp_api::openapi_document().to_pretty_json()?);
    Ok(())
}
