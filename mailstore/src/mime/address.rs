//! Address lists of the envelope (RFC 5322 §3.4, RFC 3501 §7.4.2).

use crate::meta::Address;

use super::MAX_VALUE;

fn single(name: Option<String>, addr: &str) -> Address {
    // mailparse 0.16 leaves the ", " after a group's ';' on the next address.
    let addr = addr.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    let (local, host) = match addr.rsplit_once('@') {
        Some((l, h)) => (l.to_string(), h.to_string()),
        // No domain: keep host present (empty) so it is not a group marker.
        None => (addr.to_string(), String::new()),
    };
    Address {
        name: name.filter(|n| !n.is_empty()),
        local: Some(local),
        host: Some(host),
    }
}

/// Parse an address list (at most [`MAX_VALUE`] bytes of it); groups
/// become RFC 3501 start/end markers.
pub(crate) fn addresses(value: &str) -> Vec<Address> {
    let value = super::cut_str(value, MAX_VALUE);
    let Ok(list) = mailparse::addrparse(value) else {
        // Keep something rather than lose e.g. `From: root`.
        let v = value.trim();
        return if v.is_empty() {
            Vec::new()
        } else {
            vec![single(None, v)]
        };
    };
    let mut out = Vec::new();
    for a in list.iter() {
        match a {
            mailparse::MailAddr::Single(s) => out.push(single(s.display_name.clone(), &s.addr)),
            mailparse::MailAddr::Group(g) => {
                out.push(Address {
                    name: None,
                    local: Some(g.group_name.clone()),
                    host: None,
                });
                for s in &g.addrs {
                    out.push(single(s.display_name.clone(), &s.addr));
                }
                out.push(Address::default());
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn address_without_domain_is_not_a_group_marker() {
        let a = addresses("root");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].local.as_deref(), Some("root"));
        assert_eq!(a[0].host.as_deref(), Some(""));
        assert!(addresses("undisclosed-recipients:;")
            .iter()
            .any(|x| x.host.is_none() && x.local.is_some()));
    }
}
