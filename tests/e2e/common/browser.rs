//! A browser for login tests: keeps each origin's cookie, follows no redirect by itself (each
//! hop is asserted), and reads hidden form fields out of pages.

use std::collections::HashMap;

use super::client;

/// A browser: follows nothing by itself, keeps the cookies it is given per origin.
pub struct Browser {
    c: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            c: client(),
            cookies: HashMap::new(),
        }
    }

    fn origin(url: &str) -> String {
        url::Url::parse(url).unwrap().origin().ascii_serialization()
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, url: &str) -> reqwest::Response {
        let req = match self.cookies.get(&Self::origin(url)) {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let r = req.send().await.unwrap();
        if let Some(set) = r.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookies.insert(Self::origin(url), pair);
        }
        r
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let req = self.c.get(url);
        self.send(req, url).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let req = self.c.post(url).form(form);
        self.send(req, url).await
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The value of the hidden input `name` in a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let marker2 = format!("name={name} value=\"");
    let start = page
        .find(&marker)
        .map(|i| i + marker.len())
        .or_else(|| page.find(&marker2).map(|i| i + marker2.len()))
        .unwrap_or_else(|| panic!("no {name} in {page}"));
    page[start..].split('"').next().unwrap().to_owned()
}
