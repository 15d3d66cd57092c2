//! Bounded metric labels: an HTTP status becomes one of a fixed set of strings, so a client
//! cannot grow the metric's label set by choosing odd statuses for the upstream to echo.

/// The label for a status: the status itself for the common ones, else its class (`4xx`).
pub fn status_label(status: u16) -> &'static str {
    const EXACT: &[(u16, &str)] = &[
        (0, "0"),
        (200, "200"),
        (202, "202"),
        (204, "204"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (413, "413"),
        (431, "431"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    if let Some((_, label)) = EXACT.iter().find(|(code, _)| *code == status) {
        return label;
    }
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::status_label;

    #[test]
    fn common_statuses_exact_others_by_class() {
        assert_eq!(status_label(401), "401");
        assert_eq!(status_label(0), "0");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(101), "1xx");
        assert_eq!(status_label(302), "3xx");
        assert_eq!(status_label(599), "5xx");
        assert_eq!(status_label(999), "5xx");
    }
}
