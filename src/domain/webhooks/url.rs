//! What a webhook URL may be, and which addresses a delivery may never reach (the SSRF
//! guard's rules; the resolver applies them to every address a name resolves to).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::domain::ids::ParseError;

/// hyphens, 1–63 bytes each, not starting or ending with a hyphen, hyphens in both the third
/// and fourth places only in an IDN's `xn--` label (which the URL parser has decoded and
/// checked; others are reserved, RFC 5891 §4.2.3.1); a trailing dot allowed.
/// No limit on the whole name beyond the URL's 2048 bytes: the OpenAPI `pattern` says the
/// same (a regular expression cannot bound it without a lookahead, which schema tools read
/// differently), and a name too long to resolve fails at delivery, visibly, as any other.
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && (label.get(2..4) != Some("--") || label.starts_with("xn--"))
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A webhook's URL: `https` (or `http` where allowed), with a host, no credentials, no
/// fragment, at most 2048 bytes; an IP literal is refused here already when delivery to it
/// would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// Exactly as sent, and so stored (§20).
    text: String,
    /// As parsed, to send to.
    url: url::Url,
}

impl WebhookUrl {
    pub fn parse(s: &str, allow_private: bool) -> Result<Self, ParseError> {
        if s.len() > 2048 {
            return Err(ParseError("must be at most 2048 characters"));
        }
        // The URL parser would drop or encode these silently; the URL is stored as sent.
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError("must not hold whitespace or control characters"));
        }
        if authority_is_empty(s) {
            return Err(ParseError("must name a host"));
        }
        if !path_and_query_are_plain(s) {
            return Err(ParseError(
                "path and query must hold only RFC 3986 characters (percent-encode others)",
            ));
        }
        let u = url::Url::parse(s).map_err(|_| ParseError("must be an absolute URL"))?;
        match u.scheme() {
            "https" => {}
            "http" if allow_private => {}
            _ => return Err(ParseError("must be an https URL")),
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(ParseError("must not hold credentials"));
        }
        if u.fragment().is_some() {
            return Err(ParseError("must not have a fragment"));
        }
        match u.host() {
            None => return Err(ParseError("must name a host")),
            // The URL parser lets through hosts no resolver would look up (`a.b*`, or none
            // at all): only DNS names (IDNs arrive as punycode) are delivered to.
            Some(url::Host::Domain(d)) if !is_dns_name(d) => {
                return Err(ParseError("must name a host"));
            }
            Some(_) => {}
        }
        let url = Self {
            text: s.to_owned(),
            url: u,
        };
        if url.forbidden_literal(allow_private) {
            return Err(ParseError(
                "must not point to a loopback, private, link-local or metadata address",
            ));
        }
        Ok(url)
    }

    /// Whether the host is an IP literal delivery must not reach: checked here on the way
    /// in and again before each send (a name's addresses are checked by the resolver).
    pub fn forbidden_literal(&self, allow_private: bool) -> bool {
        let ip = match self.url.host() {
            Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
            Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
            _ => return false,
        };
        !allow_private && is_forbidden(ip)
    }

    /// A URL the database holds (parsed on the way in).
    pub fn from_stored(s: &str) -> Option<Self> {
        url::Url::parse(s).ok().map(|url| Self {
            text: s.to_owned(),
            url,
        })
    }

    /// As sent and stored.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }
}

/// Whether nothing stands between `scheme://` and the path: the URL parser would take the
/// path's first segment as the host (`https:///x` is `https://x/`).
fn authority_is_empty(s: &str) -> bool {
    match s.split_once("://") {
        Some((_, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            host.is_empty() || host.starts_with(':')
        }
        None => false,
    }
}

/// Whether what follows the authority (path and query) holds only what RFC 3986 writes there,
/// as the schema's `pattern` says: unreserved and sub-delim characters, `:`, `@`, `/`, `?` and
/// `%` with two hex digits. The URL parser would percent-encode anything else silently (and
/// read a `\` as a `/`, anywhere), while the URL is stored and shown as sent.
fn path_and_query_are_plain(s: &str) -> bool {
    let Some((_, rest)) = s.split_once("://") else {
        return true; // not a URL with an authority: refused by the parser's checks
    };
    if rest.contains('\\') {
        return false;
    }
    let tail = &rest.as_bytes()[rest.find(['/', '?', '#']).unwrap_or(rest.len())..];
    let mut i = 0;
    while let Some(&b) = tail.get(i) {
        if b == b'%' {
            let hex = |j: usize| tail.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        // `#` starts a fragment, refused with its own message.
        if !(b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?#".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Addresses a delivery never reaches unless private targets are allowed: unspecified,
/// loopback, private (RFC 1918, unique-local fc00::/7), link-local (with the cloud metadata
/// endpoints 169.254.169.254 and fd00:ec2::254; Azure's 168.63.129.16), CGNAT, broadcast,
/// multicast and the documentation and benchmarking ranges. IPv4-mapped IPv6 addresses are
/// judged as IPv4; IPv6 ranges that carry an IPv4 address to an unknown gateway (6to4,
/// Teredo, NAT64, IPv4-translated and -compatible) are refused whole.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(a),
        },
    }
}

fn forbidden_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 CGNAT
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 protocol assignments
        || o == [168, 63, 129, 16] // Azure's wire server (metadata, agent)
        || o[0] >= 240 // reserved
}

fn forbidden_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local (fd00:ec2::254 among them)
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: may reach IPv4 private space
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || s[..6] == [0, 0, 0, 0, 0xffff, 0] // ::ffff:0:0/96 IPv4-translated
        || s[0] == 0x2002 // 6to4: an IPv4 address behind a relay
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: likewise
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_host_must_be_a_dns_name() {
        for bad in [
            "https://WTtkg.izI.A.E*",
            "https://a_b.example",
            "https://-a.example",
            "https://a..example",
            &format!("https://{}.example", "a".repeat(64)),
            "https://ab--c.example",
            "https://xn--a.example", // not punycode: the URL parser refuses it
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad}");
        }
        for good in [
            "https://hooks.example.com/mfa",
            "https://Hooks.Example.COM.",
            "https://bücher.example/x",
            "https://a-1.example:8443/",
            "https://a--b.example",
            "https://xn--bcher-kva.example",
            &format!("https://{}.example", "a".repeat(63)),
            // Longer than a resolver takes (253): accepted; its deliveries fail, visibly.
            &format!("https://{0}.{0}.{0}.{0}.example", "a".repeat(63)),
        ] {
            assert!(WebhookUrl::parse(good, false).is_ok(), "{good}");
        }
    }
    #[test]
    fn urls_are_https_without_credentials() {
        assert!(WebhookUrl::parse("https://hooks.example.com/x?y=1", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "not a url",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest",
            "https://[::1]/",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:192.168.0.1]/",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad}");
        }
        assert!(WebhookUrl::parse("http://127.0.0.1:8080/", true).is_ok());
        assert!(
            WebhookUrl::parse(&format!("https://a.example/{}", "x".repeat(2048)), true).is_err()
        );
        // 2048 bytes as sent, stored as sent.
        let long = format!("https://a.example/{}", "x".repeat(2048 - 18));
        assert_eq!(long.len(), 2048);
        assert_eq!(WebhookUrl::parse(&long, true).unwrap().as_str(), long);
    }

    #[test]
    fn a_url_is_kept_as_sent_or_refused() {
        for kept in [
            "https://Hooks.Example.com",
            "https://bücher.example/x?a=%41",
        ] {
            assert_eq!(WebhookUrl::parse(kept, false).unwrap().as_str(), kept);
        }
        for bad in [
            " https://hooks.example.com/",
            "https://hooks.example.com/ ",
            "https://hooks.example.com/a b",
            "https://hooks.exa\tmple.com/",
            "https://hooks.example.com/\n",
            "https://hooks.example.com/\u{7f}",
            "https://hooks.example.com/\u{a0}",
            "https:///hooks.example.com",
            "https://:443/x",
            "https://user@/x",
            "https://",
        ] {
            assert!(WebhookUrl::parse(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn path_and_query_are_written_as_rfc_3986_writes_them() {
        // A fresh conformance seed found `https://cP8N/*` refused by the schema's pattern and
        // accepted here: path and query now hold exactly the pattern's characters.
        for good in [
            "https://cP8N/*",
            "https://a.example/p;v=1/x:y@z!$&'()*+,=~-._",
            "https://a.example/%41%7e?x=1&y=%2F/?",
            "https://a.example?x",
        ] {
            assert!(WebhookUrl::parse(good, false).is_ok(), "{good}");
        }
        for bad in [
            "https://a.example/{x}",
            "https://a.example/%zz",
            "https://a.example/%4",
            "https://a.example/x?q=\"a\"",
            "https://a.example/ü",
            "https://a.example\\x",
            "https://a.example/x\\y",
            "https://a.example/x|y",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn forbidden_addresses() {
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "168.63.129.16",
            "::ffff:0:7f00:1",
            "2002:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "172.32.0.1",
            "2001:4860::8888",
        ] {
            assert!(!is_forbidden(ok.parse().unwrap()), "{ok}");
        }
    }
}
