//! `${VAR}` interpolation of string values (`$${` is a literal `${`).
//!
//! Applied to each parsed scalar, never to the YAML source, so a variable's value cannot
//! inject YAML structure. Values are substituted once (no recursion).

/// Why a value could not be interpolated. Never carries a variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpolateError {
    Missing(String),
    InvalidName(String),
    Unterminated,
}

impl std::fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpolateError::Missing(name) => {
                write!(f, "environment variable {name} is not set")
            }
            InterpolateError::InvalidName(name) => write!(
                f,
                "invalid environment variable name {name:?} in `${{...}}` (use letters, digits and `_`)"
            ),
            InterpolateError::Unterminated => {
                f.write_str("unterminated `${` (write `$${` for a literal `${`)")
            }
        }
    }
}

/// Replaces every `${NAME}` in `input` with `env(NAME)`; reports every problem found.
pub(crate) fn interpolate(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<InterpolateError>> {
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                errors.push(InterpolateError::Unterminated);
                rest = "";
                break;
            };
            let name = &after[..end];
            if !is_var_name(name) {
                errors.push(InterpolateError::InvalidName(name.to_owned()));
            } else if let Some(value) = env(name) {
                out.push_str(&value);
            } else {
                errors.push(InterpolateError::Missing(name.to_owned()));
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "B_2" => Some("${A}".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(s: &str) -> Result<String, Vec<InterpolateError>> {
        interpolate(s, &env)
    }

    #[test]
    fn substitutes_variables() {
        assert_eq!(run("x-${A}-${A}").unwrap(), "x-alpha-alpha");
        assert_eq!(run("${EMPTY}").unwrap(), "");
        assert_eq!(run("no vars $ here $5").unwrap(), "no vars $ here $5");
        assert_eq!(run("trailing $").unwrap(), "trailing $");
    }

    #[test]
    fn values_are_not_reinterpolated() {
        assert_eq!(run("${B_2}").unwrap(), "${A}");
    }

    #[test]
    fn double_dollar_escapes() {
        assert_eq!(run("$${A}").unwrap(), "${A}");
        // Only `$${` is special; scanning left to right, `$` + `$${A}`.
        assert_eq!(run("$$${A}").unwrap(), "$${A}");
    }

    #[test]
    fn reports_every_problem() {
        assert_eq!(
            run("${NOPE} ${1BAD} ${A} ${OTHER}").unwrap_err(),
            vec![
                InterpolateError::Missing("NOPE".into()),
                InterpolateError::InvalidName("1BAD".into()),
                InterpolateError::Missing("OTHER".into()),
            ]
        );
        assert_eq!(
            run("abc ${A").unwrap_err(),
            vec![InterpolateError::Unterminated]
        );
        assert_eq!(
            run("${}").unwrap_err(),
            vec![InterpolateError::InvalidName(String::new())]
        );
    }
}
