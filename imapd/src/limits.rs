//! Every limit and timeout of the IMAP server in one place, with the
//! reasoning for each value. `Config` defaults come from here.

use std::time::Duration;

/// Largest literal accepted by default (an APPENDed message): 64 MiB.
pub const MAX_LITERAL: u64 = 64 * 1024 * 1024;

/// Longest command line (literals excluded) by default. RFC 7162 §4
/// recommends accepting at least 8192 octets; long UID sets need more.
pub const MAX_LINE: usize = 64 * 1024;

/// Largest literal before login (credentials only): an unauthenticated
/// client cannot make the server buffer a large command.
pub const PREAUTH_MAX_LITERAL: u64 = 8 * 1024;

/// A whole command may exceed its largest literal by this much.
pub const COMMAND_SLACK: usize = 1024 * 1024;

/// Inactivity before autologout: RFC 3501 §5.4 asks for at least 30
/// minutes; IDLE clients re-issue IDLE every 29 minutes.
pub const AUTOLOGOUT: Duration = Duration::from_secs(31 * 60);

/// Silence during IDLE after which an untagged `* OK Still here` is sent
/// (`keepalive.rs`): NAT boxes commonly drop TCP mappings idle for 5 to
/// 30 minutes (RFC 5382 asks for at least 2 h 4 min, few comply); 2
/// minutes is Dovecot's `imap_idle_notify_interval`.
pub const IDLE_KEEPALIVE: Duration = Duration::from_secs(120);

/// Connections at once from one client address (local clients exempt):
/// enough for a few devices behind one NAT, each opening several
/// connections (Thunderbird uses up to 5 per account).
pub const MAX_PER_IP: usize = 50;

/// How long a started command may sit incomplete in the input buffer with
/// no progress (slow loris). Literal octets are consumed as they arrive, so
/// a slow but steady APPEND is progress and is not cut off.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Octets per second a command with literals must average once it has
/// taken longer than [`COMMAND_TIMEOUT`]: 1 KiB/s is far below any real
/// link, and still cuts off a client trickling a literal byte by byte.
pub const MIN_UPLOAD_RATE: u64 = 1024;

/// Mailboxes per user: far above real use, low enough that a script cannot
/// fill the store with empty mailboxes.
pub const MAX_MAILBOXES: usize = 1000;

/// Longest mailbox name in octets (Dovecot's default is 255 per level).
pub const MAX_MAILBOX_NAME: usize = 255;

/// Deepest hierarchy (`a/b/c` is 3 levels).
pub const MAX_MAILBOX_DEPTH: usize = 16;

/// How often the watcher looks for commits by other processes; bounds the
/// IDLE push delay for mail delivered by a separate smtpd.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// On PostgreSQL, where other front ends' commits are announced (LISTEN/
/// NOTIFY), the watcher still reads the commit counter this often: a
/// safety net for an announcement lost in a way the listener cannot see
/// (it wakes the watcher after every reconnection, so a restart of
/// PostgreSQL is covered without it). The read is cheap (one row per
/// watched mailbox), so a few seconds cost nothing and bound the worst case.
pub const SAFETY_POLL: Duration = Duration::from_secs(5);

/// Most characters (Unicode scalar values) in a FETCH PREVIEW text (RFC
/// 8970 §3: at most 256).
pub const PREVIEW_CHARS: usize = 256;

/// Most octets of a message's text part read to make its preview
/// (`op/preview.rs`): plenty for 256 characters after an HTML head full of
/// styles, and a bound on the work one message costs however large it is.
pub const PREVIEW_READ: u64 = 64 * 1024;

/// Messages read and encoded per FETCH batch.
pub const FETCH_BATCH_MESSAGES: usize = 256;

/// Body octets read inline per FETCH batch before it is cut short.
pub const FETCH_BATCH_BYTES: u64 = 1 << 20;

/// Body sections at least this large are streamed in chunks.
pub const STREAM_MIN: u64 = 256 * 1024;

/// Chunk size for streamed bodies.
pub const CHUNK: u64 = 256 * 1024;

/// Output queued beyond this makes a streamed FETCH wait for the socket.
pub const HIGH_WATER: usize = 256 * 1024;

/// Deepest nesting of NOT, OR and parentheses accepted in SEARCH; deeper
/// is `NO [LIMIT]` (RFC 5530). A chain of ORs (`OR a OR b OR c d`, or
/// `OR OR a b c`) counts as one level however long it is: it is parsed
/// without recursion and rebalanced, so it costs neither stack nor depth.
pub const MAX_SEARCH_DEPTH: usize = 32;

/// Most search keys (`FROM x`, `UID set`, `SEEN`, ... each count one;
/// NOT, OR and parentheses count nothing) in one SEARCH; more is
/// `NO [LIMIT]`. Bounds the parsed tree's memory (a 64 MiB command of
/// literals could otherwise hold tens of millions of keys) and the work of
/// one search, which is keys × messages (mailstore evaluates a search of
/// many keys in one pass per key over the mailbox: 10,000 header keys over
/// 2,000 messages take under 0.1 s in a release build). Ten times the
/// 1,000 of a long "any of these senders" search, or of UID sets sent one
/// per key.
pub const MAX_SEARCH_KEYS: usize = 10_000;

/// Most TEXT and BODY keys (counted in [`MAX_SEARCH_KEYS`] too) in one
/// SEARCH; more is `NO [LIMIT]`. Each may read the text of every message
/// of the mailbox (a needle of one or two characters cannot use the
/// trigram index; text not indexed yet is always read), so their cost is
/// keys × all the mailbox's text, not keys × messages.
pub const MAX_SEARCH_TEXT_KEYS: usize = 64;

/// Longest LIST/LSUB reference and longest pattern, each in octets of
/// UTF-8 (after modified UTF-7 decoding); longer is `NO [LIMIT]` before
/// any matching. A mailbox name is at most [`MAX_MAILBOX_NAME`] octets, so
/// a pattern that can match anything real is far shorter; 1,024 leaves room
/// for wildcards and a configured longer name limit. A pattern may come as
/// a literal of up to `--max-literal` octets, hence a bound of its own. A
/// wire form over four times this is refused before it is decoded.
pub const MAX_LIST_PATTERN: usize = 1024;

/// Most sort criteria in one SORT (RFC 5256 §3); more is `NO [LIMIT]`.
/// There are nine keys and repeating one changes nothing, so this is far
/// above any real use, and it bounds the keys kept per message.
pub const MAX_SORT_CRITERIA: usize = 32;

/// IDs of one References field that THREAD=REFERENCES uses: the last ones
/// (the closest ancestors, what a client that trims the field keeps).
/// Real fields hold tens; a 64 KiB field could hold thousands.
pub const MAX_THREAD_REFERENCES: usize = 1000;

/// Steps of the loop checks (RFC 5256 §3 step 1) one THREAD may take
/// (about 50 ms); past it a link that would need a check is not made, as
/// if it made a loop. Checks are needed only when a message that already
/// has replies is linked, so real mailboxes of 100,000 messages use a tiny
/// part of it; a hostile one gets flatter threads, not a slow server.
pub const THREAD_LOOP_CHECK_BUDGET: u64 = 20_000_000;

/// Live `SEARCH RETURN (UPDATE)` contexts per session (RFC 5267 §4.3.1:
/// at least one; Dovecot allows 10). Each re-runs its search on every
/// change to the mailbox and remembers its result (one UID per matching
/// message); one more is answered `* NO [NOUPDATE "tag"]` and served
/// without updates.
pub const MAX_UPDATE_CONTEXTS: usize = 10;

/// Most patterns in one extended LIST (`LIST "" (p1 p2 ...)`, RFC 5258
/// §3); more is `NO [LIMIT]`. Each costs one match per mailbox name.
pub const MAX_LIST_PATTERNS: usize = 100;

/// Most mailbox names (and event groups) in one NOTIFY SET (RFC 5465 §3);
/// more is `NO [LIMIT]`. Dovecot stops at 100 names too. The mailboxes
/// a session watches are bounded anyway by [`MAX_MAILBOXES`].
pub const MAX_NOTIFY_NAMES: usize = 100;

/// Most mailboxes plus subscribed names a NOTIFY session follows (RFC 5465
/// §5.8): the session keeps a snapshot of each; past this it sends
/// `* OK [NOTIFICATIONOVERFLOW]` and stops notifying. Four times
/// [`MAX_MAILBOXES`] leaves room for subscriptions to names that do not
/// exist.
pub const MAX_NOTIFY_TRACKED: usize = 4 * MAX_MAILBOXES;

/// Most messages in one MULTIAPPEND (RFC 3502), and most CATENATE parts
/// (RFC 4469) in one message; more is `NO [LIMIT]`. All of them arrive in
/// one command, already bounded in octets (`max_literal` + [`COMMAND_SLACK`]);
/// this bounds the count of messages one transaction inserts and of URLs
/// one command resolves. Far above what a client uploads at once (a mail
/// migration tool appends hundreds).
pub const MAX_MULTIAPPEND: usize = 1000;
