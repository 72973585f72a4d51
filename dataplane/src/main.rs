//! `mcp`: the dataplane binary. Only wiring lives here.

fn main() -> anyhow::Result<()> {
    Ok(())
}
