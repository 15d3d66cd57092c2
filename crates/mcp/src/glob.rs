//! Glob patterns for tool names, resource URIs and prompt names: `*` matches any run of
//! characters (including none), `?` exactly one, everything else itself. Matching is linear-ish
//! (greedy with a single backtrack point), so hostile patterns or names cannot blow up.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob {
            pattern: pattern.chars().collect(),
        }
    }

    /// A pattern without `*` or `?` matches only itself: rule sets look those up by name.
    pub fn literal(&self) -> Option<String> {
        let plain = !self.pattern.iter().any(|c| matches!(c, '*' | '?'));
        plain.then(|| self.pattern.iter().collect())
    }

    /// The literal text before the first wildcard (all of it for a literal pattern).
    pub fn prefix(&self) -> String {
        self.pattern
            .iter()
            .take_while(|c| !matches!(c, '*' | '?'))
            .collect()
    }

    pub fn matches(&self, s: &str) -> bool {
        // Names are nearly always ASCII: match bytes then, without collecting the text's chars
        // (an allocation per rule per call, measured as the cost of long rule lists).
        if s.is_ascii() && self.pattern.iter().all(char::is_ascii) {
            return wildcard(&self.pattern, s.as_bytes(), |p, t| {
                *p as u32 == u32::from(*t)
            });
        }
        let text: Vec<char> = s.chars().collect();
        wildcard(&self.pattern, &text, |p, t| p == t)
    }
}

/// Greedy matching with one backtrack point (the last `*`): linear-ish, never exponential.
fn wildcard<T>(p: &[char], t: &[T], same: impl Fn(&char, &T) -> bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position after the last `*` seen, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && same(&p[pi], &t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if let Some((after_star, tried)) = star {
            pi = after_star;
            ti = tried + 1;
            star = Some((after_star, tried + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).matches(s)
    }

    #[test]
    fn literals_stars_and_questions() {
        assert!(m("echo", "echo"));
        assert!(!m("echo", "echo2"));
        assert!(!m("echo", "ech"));
        assert!(m("delete_*", "delete_everything"));
        assert!(m("delete_*", "delete_"));
        assert!(!m("delete_*", "undelete_x"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("*_admin", "super_admin"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("t?ol", "tool"));
        assert!(!m("t?ol", "tol"));
        assert!(m("file:///secret/*", "file:///secret/keys.txt"));
        assert!(!m("file:///secret/*", "file:///public/secret/x"));
        assert!(m("é*", "école") && !m("é*", "ecole"));
        assert!(m("?", "é"), "characters, not bytes");
        assert!(!m("?", ""));
        assert!(m("", "") && !m("", "x"));
        assert!(m("*?", "x") && !m("*?", ""));
        assert!(m("a**b", "ab") && m("a**b", "a-b"));
        assert!(m("*.txt", "notes.txt") && !m("*.txt", "notes.txt.exe"));
        assert!(!m("*.txt", "notestxt"));
    }

    #[test]
    fn pathological_patterns_finish() {
        let text = "a".repeat(10_000);
        assert!(!m("*a*a*a*a*a*a*a*b", &text));
        assert!(m("*a*a*a*a*a*a*a*", &text));
    }
}
