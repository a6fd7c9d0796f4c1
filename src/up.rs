//! `minimail up`: the servers (SMTP with submission, IMAP, ManageSieve)
//! and the outbound delivery engine in one process over one store, from the
//! settings [`crate::config`] merged (command line, environment, file).
//!
//! [`build`] turns the settings into each part's configuration; it runs at
//! start-up and again on every reload. SIGHUP ([`Reloader::reload`])
//! re-reads the TLS certificates and the configuration file: the settings
//! in [`LIVE`] take effect for new connections and deliveries (open
//! sessions keep the settings they started with, nothing is dropped), the
//! others are logged as needing a restart, and a file or certificate that
//! does not load is refused with a log line while the old settings stay.
//! The service manager hears of it all through [`crate::notify`].

use crate::{config, logging, notify, open_store_with, snakeoil_pair, up_command, UpArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgMatches, FromArgMatches};
use imapd::ImapService;
use mailstore::Store;
use managesieve::SieveService;
use netloop::cli::listeners;
use netloop::{Reconfigure, ShutdownHandle, Throttle, TlsConfig};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use smtpd::SmtpService;
use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The flags (by clap id) whose new value a reload puts into effect. A
/// change to any other flag (listeners, the store, `--no-tls`, a flag
/// added later and not wired for reloading) is logged as needing a
/// restart. `--tls-cert`/`--tls-key` are live too when they name another
/// pair (see [`Reloader::reload`]).
const LIVE: &[&str] = &[
    "domains",
    "hostname",
    "max_message_size",
    "max_text_line",
    "max_connections",
    "max_per_ip",
    "allow_plaintext_auth",
    "verify_inbound",
    "verify_timeout",
    "auth_policy",
    "mx_port",
    "dns",
    "relay_host",
    "relay_auth_file",
    "transport_map",
    "outbound_tls",
    "outbound_ca",
    "queue_lifetime",
    "retry_min",
    "retry_max",
    "outbound_connections",
    "per_destination",
    "outbound_timeout",
    "delay_warning",
    "outbound_lease",
    "idle_keepalive",
    "trace",
];

/// The TLS in effect.
#[derive(Clone)]
struct Tls {
    config: Option<TlsConfig>,
    /// The operator's pair (`--tls-cert`, `--tls-key`).
    files: Option<(PathBuf, PathBuf)>,
    /// The self-signed certificate made beside the store, if that is used.
    snakeoil: Option<PathBuf>,
}

/// TLS by default: the operator's pair, else (unless --no-tls) one made
/// beside the store on first start.
fn tls_at_start(a: &UpArgs) -> Result<Tls> {
    let files = a.tls.tls_cert.clone().zip(a.tls.tls_key.clone());
    if let Some(config) = a.tls.config(false, "")? {
        return Ok(Tls {
            config: Some(config),
            files,
            snakeoil: None,
        });
    }
    if a.no_tls {
        if a.tls.wants_cert() {
            bail!("--tls-sni and --tls-ocsp need TLS: drop --no-tls");
        }
        return Ok(Tls {
            config: None,
            files: None,
            snakeoil: None,
        });
    }
    // Beside the SQLite file; with a PostgreSQL URL, in the working
    // directory (each front end makes its own).
    let base = match a.db.db.to_str() {
        Some(u) if mailstore::is_postgres_url(u) => Path::new("minimail-postgres"),
        _ => a.db.db.as_path(),
    };
    let (cert, key) = snakeoil_pair(base, &a.hostname)?;
    Ok(Tls {
        config: Some(netloop::tls::load_pem_with(&cert, &key, &a.tls.options())?),
        files: None,
        snakeoil: Some(cert),
    })
}

/// What the servers and the delivery engine are configured with.
struct Built {
    smtp: smtpd::Config,
    submission: smtpd::Config,
    imap: imapd::Config,
    sieve: managesieve::Config,
    /// `None` with `--no-outbound`.
    outbound: Option<outbound::Config>,
}

/// Each part's configuration from the settings `a`, the TLS in effect and
/// the failed-login throttle both servers share; reads the DKIM keys from
/// the store.
///
/// # Errors
/// A DKIM key, the inbound checks or the outbound settings (relay, its
/// password file, the transport map) that cannot be set up.
fn build(
    a: &UpArgs,
    store: &Store,
    tls: Option<TlsConfig>,
    throttle: &Arc<Throttle>,
) -> Result<Built> {
    // Each server keeps its own defaults (timeouts, per-address limit)
    // unless the settings say otherwise.
    let net = |defaults: netloop::Config| netloop::Config {
        max_connections: a.conn.max_connections,
        max_per_ip: a.max_per_ip.unwrap_or(defaults.max_per_ip),
        tls: tls.clone(),
        ..defaults
    };
    // DKIM: each domain's active key signs its authenticated users' mail.
    let dkim_keys = store
        .read_sync(|r| r.dkim_keys(None))
        .context("cannot read the DKIM keys")?;
    let signer = mailauth::Signer::new(&dkim_keys).context("cannot load a DKIM key")?;
    for k in dkim_keys.iter().filter(|k| k.active) {
        log::info!(
            "DKIM: signing as {} with selector {} ({})",
            k.domain,
            k.selector,
            k.algorithm
        );
    }
    let dkim = (!signer.is_empty()).then(|| Arc::new(signer));
    let verifier = if a.verify_inbound {
        let v = mailauth::Verifier::new(
            &a.hostname,
            a.outbound.dns,
            Duration::from_secs(a.verify_timeout.max(1)),
        )
        .context("cannot set up the inbound checks")?;
        log::info!(
            "inbound checks on (SPF, DKIM, ARC, DMARC) as {}",
            a.hostname
        );
        Some(Arc::new(v))
    } else {
        None
    };
    let auth_policy = match &a.auth_policy {
        Some(path) => mailauth::PolicyMap::load(path).map_err(anyhow::Error::msg)?,
        None => mailauth::PolicyMap::default(),
    };
    let smtp = smtpd::Config {
        dkim,
        verifier,
        auth_policy: Arc::new(auth_policy),
        sieve: Some(Arc::new(mailsieve::Filter::new(&a.hostname))),
        hostname: a.hostname.clone(),
        domains: a.domains.clone(),
        max_message_size: a.max_message_size,
        max_text_line: a.max_text_line,
        trace: a.trace,
        allow_plaintext_auth: a.tls.allow_plaintext_auth,
        throttle: Arc::clone(throttle),
        outbound: !a.no_outbound,
        net: net(smtpd::Config::default().net),
        ..smtpd::Config::default()
    };
    let imap = imapd::Config {
        trace: a.trace,
        idle_keepalive: Duration::from_secs(a.idle_keepalive),
        allow_plaintext_auth: a.tls.allow_plaintext_auth,
        throttle: Arc::clone(throttle),
        net: net(imapd::Config::default().net),
        ..imapd::Config::default()
    };
    let sieve = managesieve::Config {
        hostname: a.hostname.clone(),
        trace: a.trace,
        allow_plaintext_auth: a.tls.allow_plaintext_auth,
        throttle: Arc::clone(throttle),
        net: net(managesieve::Config::default().net),
        ..managesieve::Config::default()
    };
    let outbound = if a.no_outbound {
        None
    } else {
        let mut cfg = a.outbound.config(&a.hostname, &a.domains)?;
        cfg.trace = a.trace;
        Some(cfg)
    };
    Ok(Built {
        submission: smtpd::Config {
            submission: true,
            ..smtp.clone()
        },
        smtp,
        imap,
        sieve,
        outbound,
    })
}

/// The checks `minimail config check` adds to the file's own: the TLS
/// pair loads, the outbound settings (relay, transport map) are sound.
///
/// # Errors
/// The first that fails.
pub fn check(a: &UpArgs) -> Result<()> {
    a.tls.config(false, "")?;
    if !a.no_outbound {
        a.outbound.config(&a.hostname, &a.domains)?;
    }
    Ok(())
}

/// Run `minimail up` with the command line `argv` (what follows `up`)
/// and the settings loaded from it.
///
/// # Errors
/// The store, TLS or a listener that cannot be set up; a server failing.
pub fn run(argv: Vec<OsString>, loaded: config::Loaded) -> Result<()> {
    let a = UpArgs::from_arg_matches(&loaded.matches)?;
    let mut options = mailstore::OpenOptions::from_env();
    options.allow_corrupt |= a.allow_corrupt_store;
    let store = open_store_with(&a.db, &options)?;
    let tls = tls_at_start(&a)?;
    if tls.config.is_none() && (!a.smtps.is_empty() || !a.imaps.is_empty()) {
        bail!("--smtps/--imaps need TLS: drop --no-tls, or give --tls-cert and --tls-key");
    }
    // One failed-login count per client address across both protocols.
    let throttle = Throttle::new(netloop::ThrottleConfig::default());
    let b = build(&a, &store, tls.config.clone(), &throttle)?;
    let smtp = netloop::Server::bind_listeners(
        &listeners(&a.smtp, &[]),
        SmtpService::new(b.smtp.clone(), store.clone()),
        b.smtp.net.clone(),
    )?;
    let submission = netloop::Server::bind_listeners(
        &listeners(&a.submission, &a.smtps),
        SmtpService::new(b.submission.clone(), store.clone()),
        b.submission.net.clone(),
    )?;
    let imap = netloop::Server::bind_listeners(
        &listeners(&a.imap, &a.imaps),
        ImapService::new(b.imap.clone(), store.clone()),
        b.imap.net.clone(),
    )?;
    let sieve = netloop::Server::bind_listeners(
        &listeners(&a.sieve, &[]),
        SieveService::new(b.sieve.clone(), store.clone()),
        b.sieve.net.clone(),
    )?;
    let handles = vec![
        smtp.shutdown_handle(),
        submission.shutdown_handle(),
        imap.shutdown_handle(),
        sieve.shutdown_handle(),
    ];
    let engine = match b.outbound {
        None => None,
        Some(mut cfg) => {
            let first = [
                smtp.local_addrs(),
                submission.local_addrs(),
                imap.local_addrs(),
                sieve.local_addrs(),
            ]
            .into_iter()
            .flatten()
            .next();
            cfg.lease_node = crate::queue::lease_node(first);
            Some(
                outbound::Engine::start(store.clone(), cfg)
                    .context("cannot start outbound delivery")?,
            )
        }
    };
    let mut started = started_line(&a, &tls, &smtp, &submission, &imap, &sieve);
    if let Some(addr) = a.metrics {
        let probe = store.clone();
        metrics::set_queue_probe(move || {
            let (messages, recipients) = probe.read_sync(|r| r.queue_size()).ok()?;
            Some(metrics::QueueSize {
                messages,
                recipients,
            })
        });
        let bound = metrics::http::serve(addr).context("--metrics")?;
        started = started.replacen(
            ", store ",
            &format!(", metrics on http://{bound}/metrics, store "),
            1,
        );
    }
    let reloader = Reloader {
        argv,
        started: loaded.matches.clone(),
        current: loaded.matches,
        args: a,
        tls,
        store: store.clone(),
        throttle,
        smtp: smtp.reconfigure_handle(),
        submission: submission.reconfigure_handle(),
        imap: imap.reconfigure_handle(),
        sieve: sieve.reconfigure_handle(),
        engine: engine.as_ref().map(|e| e.reconfigure_handle()),
    };
    on_signals(handles.clone(), reloader).context("cannot install signal handlers")?;
    logging::say(&started);
    notify::send(&format!("READY=1\nSTATUS={started}"));

    let smtp_thread = std::thread::Builder::new()
        .name("smtpd".into())
        .spawn(move || smtp.run())?;
    let submission_thread = std::thread::Builder::new()
        .name("submission".into())
        .spawn(move || submission.run())?;
    let sieve_thread = std::thread::Builder::new()
        .name("managesieve".into())
        .spawn(move || sieve.run())?;
    let imap_result = imap.run();
    // If one server stops (shutdown or a poll failure), stop the other too.
    notify::send("STOPPING=1");
    for h in &handles {
        h.shutdown();
    }
    let smtp_result = smtp_thread
        .join()
        .map_err(|_| anyhow!("smtpd thread panicked"))?;
    let submission_result = submission_thread
        .join()
        .map_err(|_| anyhow!("submission thread panicked"))?;
    let sieve_result = sieve_thread
        .join()
        .map_err(|_| anyhow!("managesieve thread panicked"))?;
    if let Some(e) = engine {
        e.shutdown();
    }
    store.shutdown();
    submission_result.context("submission")?;
    sieve_result.context("managesieve")?;
    smtp_result.context("smtpd")?;
    imap_result.context("imapd")?;
    logging::say("minimail: stopped cleanly");
    Ok(())
}

/// "minimail up: smtp on A, submission on B, imap on C[, imaps on D],
/// sieve on E, store F (TLS on)": the listeners come back in the order given, plain
/// ones first.
fn started_line(
    a: &UpArgs,
    tls: &Tls,
    smtp: &netloop::Server<SmtpService>,
    submission: &netloop::Server<SmtpService>,
    imap: &netloop::Server<ImapService>,
    sieve: &netloop::Server<SieveService>,
) -> String {
    let mut parts = Vec::new();
    let mut name = |proto: &str, tls_proto: &str, addrs: Vec<SocketAddr>, plain: usize| {
        let (p, t) = addrs.split_at(plain.min(addrs.len()));
        let join = |v: &[SocketAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        parts.push(format!("{proto} on {}", join(p).join(", ")));
        if !t.is_empty() {
            parts.push(format!("{tls_proto} on {}", join(t).join(", ")));
        }
    };
    name("smtp", "smtps", smtp.local_addrs(), a.smtp.len());
    name(
        "submission",
        "smtps",
        submission.local_addrs(),
        a.submission.len(),
    );
    name("imap", "imaps", imap.local_addrs(), a.imap.len());
    name("sieve", "sieve", sieve.local_addrs(), a.sieve.len());
    format!(
        "minimail up: {}, store {}{}",
        parts.join(", "),
        a.db.db.display(),
        match (&tls.snakeoil, &tls.config) {
            (Some(cert), _) => format!(" (TLS on, self-signed {})", cert.display()),
            (None, Some(_)) => " (TLS on)".to_owned(),
            (None, None) => String::new(),
        }
    )
}

/// A thread turning SIGTERM / SIGINT into a graceful shutdown (a second
/// one exits at once: every acknowledged message is already durable) and
/// SIGHUP into a reload. SIGHUP never ends the process.
fn on_signals(handles: Vec<ShutdownHandle>, mut reloader: Reloader) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                if sig == SIGHUP {
                    notify::reloading();
                    let status = match reloader.reload() {
                        Ok(()) => "configuration reloaded".to_owned(),
                        Err(e) => {
                            log::error!(
                                "SIGHUP: new configuration refused, the old one stays: {e:#}"
                            );
                            format!("reload refused: {e:#}")
                        }
                    };
                    notify::send(&format!("READY=1\nSTATUS={status}"));
                    continue;
                }
                seen += 1;
                if seen > 1 {
                    logging::say(&format!("second signal ({sig}): exiting now"));
                    std::process::exit(130);
                }
                notify::send("STOPPING=1\nSTATUS=shutting down");
                log::info!("signal {sig}: shutting down");
                for h in &handles {
                    h.shutdown();
                }
            }
        })?;
    Ok(())
}

/// What a reload needs: how the settings were given, what is in effect,
/// and the handles that change the running parts.
struct Reloader {
    /// The command line after `up` (it keeps winning over the file).
    argv: Vec<OsString>,
    /// The settings at start-up: what listeners and the store were made with.
    started: ArgMatches,
    /// The settings in effect.
    current: ArgMatches,
    args: UpArgs,
    tls: Tls,
    store: Store,
    throttle: Arc<Throttle>,
    smtp: Reconfigure<SmtpService>,
    submission: Reconfigure<SmtpService>,
    imap: Reconfigure<ImapService>,
    sieve: Reconfigure<SieveService>,
    engine: Option<outbound::Reconfigure>,
}

/// A flag's values as given (for comparing two loads).
fn raw(m: &ArgMatches, id: &str) -> Vec<OsString> {
    m.get_raw(id)
        .map(|v| v.map(OsStr::to_owned).collect())
        .unwrap_or_default()
}

impl Reloader {
    /// Re-read the certificates and the configuration; apply what can
    /// change live, log what needs a restart.
    ///
    /// # Errors
    /// A file, certificate or setting that does not load: nothing of it
    /// is applied.
    fn reload(&mut self) -> Result<()> {
        for (cert, r) in netloop::tls::reload_all() {
            match r {
                Ok(()) => log::info!("SIGHUP: reloaded TLS certificate {}", cert.display()),
                Err(e) => log::error!("SIGHUP: kept the old TLS certificate: {e}"),
            }
        }
        let loaded = config::load(&up_command(), &self.argv).map_err(|e| anyhow!("{e}"))?;
        let mut args = UpArgs::from_arg_matches(&loaded.matches)?;
        let mut up = up_command();
        up.build();
        let (mut live, mut restart) = (Vec::new(), Vec::new());
        for (arg, long) in config::keys(&up) {
            let id = arg.get_id().as_str();
            let new = raw(&loaded.matches, id);
            if LIVE.contains(&id) {
                if new != raw(&self.current, id) {
                    live.push(long.to_owned());
                }
            } else if new != raw(&self.started, id) && !["tls_cert", "tls_key"].contains(&id) {
                restart.push(long.to_owned());
            }
        }
        // Another certificate pair is loaded now; a switch between the
        // operator's pair and none (or --no-tls) needs a restart.
        let files = args.tls.tls_cert.clone().zip(args.tls.tls_key.clone());
        let tls = match (&self.tls.files, &files) {
            (Some(old), Some(new)) if old != new => {
                live.push("tls-cert".to_owned());
                Tls {
                    config: Some(netloop::tls::load_pem_with(
                        &new.0,
                        &new.1,
                        &args.tls.options(),
                    )?),
                    files: files.clone(),
                    snakeoil: None,
                }
            }
            (old, new) if old != new => {
                restart.push("tls-cert".to_owned());
                self.tls.clone()
            }
            _ => self.tls.clone(),
        };
        // The queue and the delivery engine stay as they started.
        args.no_outbound = self.args.no_outbound;
        let b = build(&args, &self.store, tls.config.clone(), &self.throttle)?;
        for (handle, cfg) in [(&self.smtp, b.smtp), (&self.submission, b.submission)] {
            handle.apply(move |service, net| {
                *net = cfg.net.clone();
                service.set_config(cfg);
            });
        }
        let imap = b.imap;
        self.imap.apply(move |service, net| {
            *net = imap.net.clone();
            service.set_config(imap);
        });
        let sieve = b.sieve;
        self.sieve.apply(move |service, net| {
            *net = sieve.net.clone();
            service.set_config(sieve);
        });
        if let (Some(engine), Some(cfg)) = (&self.engine, b.outbound) {
            engine.apply(cfg);
        }
        log::info!(
            "SIGHUP: reloaded the configuration{}: {}",
            loaded
                .file
                .as_ref()
                .map(|f| format!(" from {}", f.display()))
                .unwrap_or_default(),
            if live.is_empty() {
                "no setting changed".to_owned()
            } else {
                format!("now in effect for new connections: {}", live.join(", "))
            }
        );
        if !restart.is_empty() {
            log::warn!(
                "SIGHUP: {} changed, which needs a restart; running on with the old value",
                restart.join(", ")
            );
        }
        self.current = loaded.matches;
        self.args = args;
        self.tls = tls;
        Ok(())
    }
}
