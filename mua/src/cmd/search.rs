//! `mua search QUERY`: the query language of `query.rs` run as a server-side
//! UID SEARCH (RFC 3501 §6.4.4); output like `mua list`.

use crate::cli::Ctx;
use crate::error::MuaError;
use crate::query::{self, QUERY_HELP};
use clap::Args;

/// Search a mailbox on the server.
#[derive(Debug, Args)]
#[command(after_help = QUERY_HELP)]
pub struct SearchCmd {
    /// The query (see below); several words are joined with spaces.
    /// Put `--` before a query that starts with `-` (`mua search -- -seen`).
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// Mailbox to search.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
    /// At most N results (the newest).
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

impl SearchCmd {
    /// Runs `mua search`.
    ///
    /// # Errors
    /// Bad query (exit 2), no such mailbox (5), connection and auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let criteria = query::to_search(&self.query.join(" ")).map_err(MuaError::Usage)?;
        let mut c = ctx.imap()?;
        c.select(&self.mailbox, true)?;
        let uids = c.uid_search(criteria)?;
        let rows = crate::model::fetch_rows(&mut c, uids, self.limit)?;
        c.logout();
        super::list::print_rows(&rows, self.json)
    }
}
