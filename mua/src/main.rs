//! `mua` binary entry point: all work happens in the library (`cli::main`).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(mua::cli::main())
}
