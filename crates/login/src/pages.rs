//! The pages a person sees: the consent page and the error page. Server-rendered, escaped,
//! no script, nothing loaded from elsewhere, unframeable (the CSP in `exchange`).

use crate::clients::{Client, ClientKind};
use crate::exchange::{escape_html, LoginResponse};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;\
padding:0 1rem;color:#1f2328}h1{font-size:1.4rem}.who{background:#f6f8fa;border:1px solid #d0d7de;\
border-radius:6px;padding:.8rem 1rem}.warn{color:#9a6700;font-weight:600}code{font-size:.95em}\
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem;border-radius:6px;border:1px solid #d0d7de}\
button.allow{background:#1f883d;color:#fff;border-color:#1f883d}li{margin:.2rem 0}";

fn page(status: u16, title: &str, body: &str) -> LoginResponse {
    LoginResponse::html(status, page_html(title, body))
}

fn page_html(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\"><title>{}</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>",
        escape_html(title)
    )
}

/// A problem the person must read (no redirect is safe, or none is useful).
pub fn error_page(status: u16, reason: &'static str, message: &str) -> LoginResponse {
    let body = format!(
        "<h1>Sign-in failed</h1><p>{}</p><p>Reason: <code>{reason}</code></p>",
        escape_html(message)
    );
    page(status, "Sign-in failed", &body).refused(reason)
}

/// What the consent page shows.
pub struct ConsentView<'a> {
    pub client: &'a Client,
    pub redirect_uri: &'a str,
    pub route: &'a str,
    pub resource: &'a str,
    pub scopes: &'a [String],
    pub user: &'a str,
    pub form_action: &'a str,
    pub csrf: &'a str,
}

/// Names the client by what is known of it: a metadata client by its verified host, a
/// dynamically registered one visibly unverified (the MCP spec's confused-deputy guidance).
fn client_identity(c: &Client) -> String {
    let name = c.name.as_deref().map(escape_html);
    match &c.kind {
        ClientKind::Configured => format!(
            "<strong>{}</strong> (configured by your administrator)",
            name.unwrap_or_else(|| escape_html(&c.id))
        ),
        ClientKind::Metadata { host } => format!(
            "<strong>{}</strong> — verified: its description is published by <strong>{}</strong>",
            name.unwrap_or_else(|| escape_html(host)),
            escape_html(host)
        ),
        ClientKind::Unverified => format!(
            "<span class=warn>Unverified application</span> calling itself <strong>{}</strong> \
             — anyone can register under any name",
            name.unwrap_or_else(|| "(no name)".into())
        ),
    }
}

pub fn consent_page(v: &ConsentView<'_>) -> LoginResponse {
    let host = url::Url::parse(v.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| v.redirect_uri.to_owned());
    let scopes: String = if v.scopes.is_empty() {
        "<li>(no scopes)</li>".into()
    } else {
        v.scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape_html(s)))
            .collect()
    };
    let body = format!(
        "<h1>Allow access to {route}?</h1>\
         <p>Signed in as <strong>{user}</strong>.</p>\
         <div class=who><p>{client}</p>\
         <p>After you answer, your browser goes to <strong>{host}</strong>.</p></div>\
         <p>It asks to use <strong>{route}</strong> (<code>{resource}</code>) with:</p><ul>{scopes}</ul>\
         <form method=post action=\"{action}\">\
         <input type=hidden name=csrf value=\"{csrf}\">\
         <button class=allow name=decision value=allow>Allow</button>\
         <button name=decision value=deny>Deny</button></form>",
        route = escape_html(v.route),
        user = escape_html(v.user),
        client = client_identity(v.client),
        host = escape_html(&host),
        resource = escape_html(v.resource),
        action = escape_html(v.form_action),
        csrf = escape_html(v.csrf),
    );
    // Both answers of the form redirect to the client (the code, or access_denied).
    LoginResponse::html_form_redirecting_to(200, page_html("Allow access?", &body), v.redirect_uri)
}
