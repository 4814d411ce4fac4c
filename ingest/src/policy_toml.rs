//! The policy file of `careledger policy adopt` (a school's care policy, 制度, as TOML):
//! read, parsed into `events::Policy` and checked against the policy's own rules (rules §6.3).
//!
//! It owns the file's errors, each naming the file and, where the TOML says it, the line or
//! the field. It must never append anything (the binary records a `policy_adopted` event from
//! what this returns) and never use the batch validator: a policy file is one value, not a
//! batch of events.

use std::path::Path;

use events::Policy;
use events::policy::PolicyProblem;

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The file could not be read.
    #[error("{file}: expected a readable TOML file: {cause}")]
    Unreadable {
        /// The path as the user gave it.
        file: String,
        /// The I/O error of reading it.
        cause: std::io::Error,
    },
    /// The text is not TOML of a policy's shape (`line` when the parser located it).
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax {
        /// The path as the user gave it.
        file: String,
        /// The line, from 1, when the TOML parser located the error.
        line: Option<usize>,
        /// The parser's message (unknown field, wrong type, bad TOML).
        message: String,
    },
    /// The policy parsed but breaks its own rules; one line per problem.
    #[error("{}", problem_lines(file, problems))]
    Invalid {
        /// The path as the user gave it.
        file: String,
        /// Every broken rule of rules §6.3, each naming its field; never empty.
        problems: Vec<PolicyProblem>,
    },
}

fn problem_lines(file: &str, problems: &[PolicyProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}: field {}: expected {}", p.field, p.expected))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and checks the policy in `path`; errors name the file as `path` shows it.
pub fn read(path: &Path) -> Result<Policy, PolicyFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|cause| PolicyFileError::Unreadable {
        file: file.clone(),
        cause,
    })?;
    parse(&file, &text)
}

/// Parses and checks policy TOML `text` of a file named `file`.
pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyFileError> {
    let policy: Policy = toml::from_str(text).map_err(|e| PolicyFileError::Syntax {
        file: file.to_owned(),
        // The parser gives a byte span; people read lines.
        line: e.span().map(|s| text[..s.start].matches('\n').count() + 1),
        message: e.message().to_owned(),
    })?;
    let problems = policy.problems();
    if !problems.is_empty() {
        return Err(PolicyFileError::Invalid {
            file: file.to_owned(),
            problems,
        });
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_default_policy_as_toml_when_parsed_then_it_is_that_policy() {
        let text = toml::to_string(&Policy::default()).expect("the default policy serializes");
        let policy = parse("p.toml", &text).expect("the default policy is valid");
        assert_eq!(policy, Policy::default());
    }

    #[test]
    fn given_an_unknown_table_then_the_error_names_file_and_line() {
        let err = parse("p.toml", "\n[talks]\nper_term = 0\n").unwrap_err();
        assert!(
            matches!(&err, PolicyFileError::Syntax { line: Some(2), .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("p.toml:2: unknown field `talks`"),
            "{err}"
        );
    }

    #[test]
    fn given_limits_out_of_order_then_the_error_names_the_field() {
        let err = parse("p.toml", "[pairing]\nmin_children = 5\nmax_children = 2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.toml: field pairing.max_children: expected at least pairing.min_children"
        );
    }

    #[test]
    fn given_a_missing_file_then_the_error_says_unreadable() {
        let err = read(Path::new("/nonexistent/p.toml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/p.toml: expected a readable TOML file: "),
            "{err}"
        );
    }
}
