pub fn run(_ctx: &mut crate::cli::Ctx, _m: &str) -> anyhow::Result<()> {
    Ok(())
}
