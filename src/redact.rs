//! Redaction of URLs inside error texts. Client errors (reqwest, the registry client) embed the
//! URL they failed on, possibly with credentials (`user:pass@`) or a query string carrying a
//! token. Before such a text reaches a log line, a Nack reason or `/readyz`, every URL in it is
//! cut down to scheme, host, port and path.

/// Characters that may appear in a URL scheme (RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn scheme_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
}

/// Characters that end a URL embedded in prose: whitespace, quotes and closing brackets.
fn url_end(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'<' | b'>' | b')' | b']' | b'`')
}

/// `text` with every `scheme://…` URL in it reduced to scheme, host, port and path: the
/// userinfo (`user:password@`), the query (`?…`) and the fragment (`#…`) are removed, each
/// replaced by a marker so the reader can see something was cut.
pub fn redact(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // `copied`: bytes of `text` already written to `out`.
    let (mut copied, mut search) = (0usize, 0usize);
    while let Some(found) = text[search..].find("://") {
        let sep = search + found;
        let mut start = sep;
        while start > copied && scheme_char(b[start - 1]) {
            start -= 1;
        }
        if start == sep || !b[start].is_ascii_alphabetic() {
            // No scheme before `://`: not a URL; look further.
            search = sep + 3;
            continue;
        }
        let mut end = sep + 3;
        while end < b.len() && !url_end(b[end]) {
            end += 1;
        }
        out.push_str(&text[copied..sep + 3]);
        out.push_str(&redact_rest(&text[sep + 3..end]));
        copied = end;
        search = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The part of a URL after `scheme://`, without userinfo, query or fragment.
fn redact_rest(rest: &str) -> String {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(rest.len());
    match authority.rfind('@') {
        Some(at) => {
            out.push_str("<redacted>@");
            out.push_str(&authority[at + 1..]);
        }
        None => out.push_str(authority),
    }
    match tail.find(['?', '#']) {
        Some(cut) => {
            out.push_str(&tail[..cut]);
            out.push_str("?<redacted>");
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn userinfo_query_and_fragment_are_removed_from_every_url() {
        assert_eq!(
            redact("error sending request for url (http://bob:hunter2@reg.example:8081/subjects?token=s3cret#frag)"),
            "error sending request for url (http://<redacted>@reg.example:8081/subjects?<redacted>)"
        );
        assert_eq!(
            redact("a https://h/p?x=1 and wss://u@h2:9443/ws, then http://h3"),
            "a https://h/p?<redacted> and wss://<redacted>@h2:9443/ws, then http://h3"
        );
        // Only a query, no path; a fragment alone.
        assert_eq!(redact("http://h:1?key=abc"), "http://h:1?<redacted>");
        assert_eq!(
            redact("see http://h/x#secret."),
            "see http://h/x?<redacted>"
        );
        // A password containing '@' and ':' is removed whole (the last '@' ends userinfo).
        assert_eq!(
            redact("\"http://u:p@ss:w@host/\""),
            "\"http://<redacted>@host/\""
        );
    }

    #[test]
    fn texts_without_secrets_are_unchanged() {
        for plain in [
            "",
            "connection refused",
            "http://127.0.0.1:8081/subjects/x-value/versions",
            "not a url: ://nothing, 1://2",
            "ümlaut http://h/ä ok",
        ] {
            assert_eq!(redact(plain), plain);
        }
    }

    #[test]
    fn no_secret_survives_in_a_reqwest_error() {
        // A real client error text: the request fails (nothing listens on port 1).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(async {
            reqwest::Client::new()
                .get("http://alice:pw123@127.0.0.1:1/subjects?api_key=tok456")
                .send()
                .await
                .unwrap_err()
        });
        let raw = err.to_string();
        // The raw text does carry the query (this is what must not reach a log).
        assert!(raw.contains("tok456"), "{raw}");
        let clean = redact(&raw);
        assert!(clean.contains("127.0.0.1:1/subjects"), "{clean}");
        for secret in ["alice", "pw123", "api_key", "tok456"] {
            assert!(!clean.contains(secret), "{secret} in {clean}");
        }
    }
}
