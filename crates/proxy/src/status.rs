//! The admin status page (`/status` on the admin listener): the gateway's state at a glance for an
//! operator — readiness, configuration version and last reload, routes, issuers with the age of
//! their keys and their last fetch, certificates with their expiry, refusals by reason. The view
//! is plain data; [`render`] turns it into one self-contained HTML document (inline CSS, no
//! scripts, no external assets), and every value is escaped: route names, issuer errors and
//! certificate names come from configuration and IdPs, not from us.

use std::fmt::Write;
use std::time::Duration;

use mcpgate_http::escape_html as esc;

/// Everything the page shows, collected by the admin listener at request time.
pub struct StatusView {
    pub version: &'static str,
    pub uptime: Duration,
    /// `None` when ready; otherwise why not.
    pub not_ready: Option<&'static str>,
    pub config: ConfigRow,
    pub routes: Vec<RouteRow>,
    pub issuers: Vec<IssuerRow>,
    pub certificates: Vec<CertificateRow>,
    /// Refusals since start, by stable reason, largest first.
    pub refusals: Vec<(String, u64)>,
}

pub struct ConfigRow {
    /// Short hash of the configuration file in use.
    pub version: String,
    /// How long ago it was loaded.
    pub loaded_ago: Duration,
    /// The last reload attempt: `Ok(())` or its errors; `None` before the first.
    pub last_reload: Option<(Duration, Result<(), String>)>,
}

pub struct RouteRow {
    pub name: String,
    /// `host/path`, or the path alone on any host.
    pub location: String,
    pub upstream: String,
    /// `none`, or the trusted issuers' names.
    pub auth: String,
    /// How many tool, resource and prompt rules the route has.
    pub rules: usize,
}

pub struct IssuerRow {
    pub name: String,
    pub issuer: String,
    /// `JWKS`, `introspection` or both.
    pub kind: String,
    /// Signing keys held, and how long ago they were fetched.
    pub keys: Option<(usize, Duration)>,
    /// The last fetch's error, if it failed.
    pub last_error: Option<String>,
}

pub struct CertificateRow {
    pub listener: String,
    pub names: String,
    /// Seconds until `notAfter`; negative once expired.
    pub expires_in_secs: i64,
}

/// Below this, a certificate's row is marked as a warning (the alert rules use the same 14 days).
const CERT_WARNING_SECS: i64 = 14 * 86_400;

/// The page as one HTML document.
pub fn render(v: &StatusView) -> String {
    let mut h = String::with_capacity(8 * 1024);
    h.push_str(HEAD);
    summary(&mut h, v);
    routes(&mut h, &v.routes);
    issuers(&mut h, &v.issuers);
    certificates(&mut h, &v.certificates);
    refusals(&mut h, &v.refusals);
    h.push_str("</main></body></html>\n");
    h
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcpgate status</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:20px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:15px;margin:22px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eceff3;vertical-align:top}
th{background:#eef1f5;font-weight:600}code{font:12px ui-monospace,monospace}
.ok{color:#11703b;font-weight:600}.bad{color:#b3261e;font-weight:600}.warn{color:#8a5a00;font-weight:600}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #dde1e7;padding:10px 14px;min-width:170px}
.card b{display:block;font-size:12px;color:#5b6475;font-weight:500}.muted{color:#5b6475}
</style></head><body><main>
<h1>mcpgate status</h1>
"#;

fn summary(h: &mut String, v: &StatusView) {
    let ready = match v.not_ready {
        None => r#"<span class="ok">ready</span>"#.to_string(),
        Some(why) => format!(r#"<span class="bad">not ready: {}</span>"#, esc(why)),
    };
    let reload = match &v.config.last_reload {
        None => r#"<span class="muted">none yet</span>"#.to_string(),
        Some((ago, Ok(()))) => format!(r#"<span class="ok">applied</span> {} ago"#, ago_text(*ago)),
        Some((ago, Err(e))) => format!(
            r#"<span class="bad">rejected</span> {} ago<br><code>{}</code>"#,
            ago_text(*ago),
            esc(e)
        ),
    };
    let _ = write!(
        h,
        r#"<div class="cards">
<div class="card"><b>State</b>{ready}</div>
<div class="card"><b>Version</b>{}</div>
<div class="card"><b>Up for</b>{}</div>
<div class="card"><b>Configuration</b><code>{}</code>, loaded {} ago</div>
<div class="card"><b>Last reload</b>{reload}</div>
</div>
"#,
        esc(v.version),
        ago_text(v.uptime),
        esc(&v.config.version),
        ago_text(v.config.loaded_ago),
    );
}

fn routes(h: &mut String, rows: &[RouteRow]) {
    table_start(h, "Routes", &["name", "where", "upstream", "auth", "rules"]);
    for r in rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&r.location),
            esc(&r.upstream),
            esc(&r.auth),
            r.rules
        );
    }
    h.push_str("</table>\n");
}

fn issuers(h: &mut String, rows: &[IssuerRow]) {
    table_start(
        h,
        "Issuers",
        &["name", "issuer", "validates by", "keys", "last fetch"],
    );
    for r in rows {
        let keys = match r.keys {
            Some((n, age)) => format!("{n}, fetched {} ago", ago_text(age)),
            None if r.kind == "introspection" => "—".to_string(),
            None => r#"<span class="bad">none yet</span>"#.to_string(),
        };
        let last = match &r.last_error {
            None => r#"<span class="ok">ok</span>"#.to_string(),
            Some(e) => format!(r#"<span class="bad">failed</span> <code>{}</code>"#, esc(e)),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{keys}</td><td>{last}</td></tr>",
            esc(&r.name),
            esc(&r.issuer),
            esc(&r.kind)
        );
    }
    h.push_str("</table>\n");
}

fn certificates(h: &mut String, rows: &[CertificateRow]) {
    if rows.is_empty() {
        h.push_str("<h2>Certificates</h2><p class=\"muted\">No TLS listener.</p>\n");
        return;
    }
    table_start(h, "Certificates", &["listener", "names", "expires"]);
    for r in rows {
        let class = match r.expires_in_secs {
            s if s <= 0 => "bad",
            s if s < CERT_WARNING_SECS => "warn",
            _ => "ok",
        };
        let when = if r.expires_in_secs <= 0 {
            "expired".to_string()
        } else {
            format!(
                "in {}",
                ago_text(Duration::from_secs(r.expires_in_secs as u64))
            )
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"{class}\">{when}</td></tr>",
            esc(&r.listener),
            esc(&r.names)
        );
    }
    h.push_str("</table>\n");
}

fn refusals(h: &mut String, rows: &[(String, u64)]) {
    if rows.is_empty() {
        h.push_str("<h2>Refusals since start</h2><p class=\"muted\">None.</p>\n");
        return;
    }
    table_start(h, "Refusals since start", &["reason", "count"]);
    for (reason, n) in rows {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{n}</td></tr>",
            esc(reason)
        );
    }
    h.push_str("</table>\n");
}

fn table_start(h: &mut String, title: &str, columns: &[&str]) {
    let _ = write!(h, "<h2>{title}</h2><table><tr>");
    for c in columns {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr>\n");
}

/// A duration as a person reads it: `42 s`, `7 min`, `3 h 5 min`, `12 d`, `3 y`.
pub fn ago_text(d: Duration) -> String {
    const YEAR: u64 = 365 * 86_400;
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        86_400..YEAR => format!("{} d", s / 86_400),
        _ => format!("{} y", s / YEAR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> StatusView {
        StatusView {
            version: "0.1.0",
            uptime: Duration::from_secs(3725),
            not_ready: None,
            config: ConfigRow {
                version: "3f2a9c1e".into(),
                loaded_ago: Duration::from_secs(90),
                last_reload: Some((Duration::from_secs(30), Err("routes[0].path: <bad>".into()))),
            },
            routes: vec![RouteRow {
                name: "github<script>".into(),
                location: "/github/mcp (any host)".into(),
                upstream: "https://api.example.com/mcp".into(),
                auth: "corp".into(),
                rules: 3,
            }],
            issuers: vec![IssuerRow {
                name: "corp".into(),
                issuer: "https://idp.example.com".into(),
                kind: "JWKS".into(),
                keys: Some((2, Duration::from_secs(40))),
                last_error: Some("https://idp.example.com/jwks: connect error: refused".into()),
            }],
            certificates: vec![CertificateRow {
                listener: "0.0.0.0:443".into(),
                names: "mcp.example.com".into(),
                expires_in_secs: 3 * 86_400,
            }],
            refusals: vec![("invalid_token".into(), 7)],
        }
    }

    #[test]
    fn every_section_is_on_the_page_and_values_are_escaped() {
        let page = render(&view());
        for want in [
            "mcpgate status",
            "github&lt;script&gt;",
            "routes[0].path: &lt;bad&gt;",
            "2, fetched 40 s ago",
            "connect error: refused",
            r#"class="warn">in 3 d"#,
            "<code>invalid_token</code></td><td>7",
            "1 h 2 min",
        ] {
            assert!(page.contains(want), "{want} missing");
        }
        assert!(!page.contains("<script"), "no script, no injected markup");
        assert!(
            !page.contains("http://") || !page.contains("src="),
            "no external assets"
        );
    }

    #[test]
    fn empty_sections_say_so() {
        let mut v = view();
        v.certificates.clear();
        v.refusals.clear();
        v.not_ready = Some("draining");
        let page = render(&v);
        assert!(page.contains("No TLS listener."));
        assert!(page.contains("not ready: draining"));
        assert!(page.contains("Refusals since start</h2><p class=\"muted\">None."));
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(ago_text(Duration::from_secs(42)), "42 s");
        assert_eq!(ago_text(Duration::from_secs(420)), "7 min");
        assert_eq!(ago_text(Duration::from_secs(11_100)), "3 h 5 min");
        assert_eq!(ago_text(Duration::from_secs(12 * 86_400 + 5)), "12 d");
        assert_eq!(ago_text(Duration::from_secs(3 * 365 * 86_400 + 9)), "3 y");
    }
}
