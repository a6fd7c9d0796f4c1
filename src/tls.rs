//! TLS material for `minimail up`: `minimail cert` (a self-signed pair for
//! development) and the pair made beside the store on first start when no
//! certificate is given (TLS by default, as Debian's Postfix and Dovecot
//! ship a snakeoil pair).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub(crate) struct CertArgs {
    /// Directory to write cert.pem and key.pem into.
    #[arg(long, default_value = ".")]
    pub(crate) out: PathBuf,
    /// A DNS name or IP address the certificate is for (repeatable).
    #[arg(long = "name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    pub(crate) names: Vec<String>,
    /// Overwrite existing files.
    #[arg(long)]
    pub(crate) force: bool,
}

/// The self-signed pair beside the store (`STORE.cert.pem`,
/// `STORE.key.pem`), made on first use for `hostname`, `localhost` and
/// 127.0.0.1; later starts reuse it, so clients that accepted it once keep
/// trusting it.
pub(crate) fn snakeoil_pair(db: &Path, hostname: &str) -> Result<(PathBuf, PathBuf)> {
    let with = |ext: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (cert, key) = (with(".cert.pem"), with(".key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut names = vec![hostname.to_owned()];
    for n in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    }
    let made = netloop::tls::self_signed(&names)?;
    write_file(&key, made.key_pem.as_bytes(), 0o600)?;
    write_file(&cert, made.cert_pem.as_bytes(), 0o644)?;
    log::info!(
        "made a self-signed TLS certificate for {}: {} (give --tls-cert/--tls-key for a real one)",
        names.join(", "),
        cert.display()
    );
    Ok((cert, key))
}

pub(crate) fn cert(c: CertArgs) -> Result<()> {
    let cert_path = c.out.join("cert.pem");
    let key_path = c.out.join("key.pem");
    for p in [&cert_path, &key_path] {
        if p.exists() && !c.force {
            bail!("{} exists (use --force to overwrite)", p.display());
        }
    }
    let made = netloop::tls::self_signed(&c.names)?;
    std::fs::create_dir_all(&c.out)
        .with_context(|| format!("cannot create {}", c.out.display()))?;
    write_file(&cert_path, made.cert_pem.as_bytes(), 0o644)?;
    write_file(&key_path, made.key_pem.as_bytes(), 0o600)?;
    println!(
        "wrote {} and {} (self-signed for {}); use them with --tls-cert and --tls-key",
        cert_path.display(),
        key_path.display(),
        c.names.join(", ")
    );
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
