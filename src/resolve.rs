//! From the parsed command line (`cli`) to the plain requests the handlers take (`commands`):
//! times and dates parsed, format names and enums mapped, the `report term` scope chosen.
//!
//! This is the one place that reads clap's types; it must never open the store, read an input
//! file or run a command. A value that does not parse is the user's error (`BadInput`,
//! nothing written), reported before the store is touched; within one command the values are
//! checked in the order the command has always checked them, so the same mistake gives the
//! same message.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use events::EventKind;
use projections::Period;

use crate::BadInput;
use crate::cli::{
    ChildTermsFormat, Command, ExportFormat, ExportWhat, FixturesWhat, KeysWhat, ListFormat,
    ListOpts, PolicyWhat, ProofsCommand, ReportWhat, Role, ScoreFormat, ScoreOpts,
};
use crate::commands::{
    ExportOptions, ListOptions, LogOptions, ProofsRequest, ReportOptions, Request, ScoreOutput,
    ScoresOptions,
};
use crate::output::Format;

/// Parses `--as-of`: RFC 3339, or a date (the end of that day, +08:00).
pub fn as_of(s: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    s.map(|s| {
        events::time::parse_as_of(s).ok_or_else(|| {
            BadInput(format!(
                "--as-of: expected an RFC 3339 time or a date YYYY-MM-DD, found {s:?}"
            ))
            .into()
        })
    })
    .transpose()
}

/// Parses a `--valid-at` / `--on` date.
pub fn date(flag: &str, s: Option<&str>) -> Result<Option<NaiveDate>> {
    s.map(|s| {
        events::time::parse_date(s).ok_or_else(|| {
            BadInput(format!("{flag}: expected a date YYYY-MM-DD, found {s:?}")).into()
        })
    })
    .transpose()
}

fn list(opts: ListOpts) -> Result<ListOptions> {
    Ok(ListOptions {
        as_of: as_of(opts.as_of.as_deref())?,
        format: match opts.format {
            ListFormat::Table => Format::Table,
            ListFormat::Json => Format::Json,
            ListFormat::Csv => Format::Csv,
            ListFormat::Xlsx => Format::Xlsx,
        },
        out: opts.out,
    })
}

fn score_opts(opts: ScoreOpts) -> Result<(Option<DateTime<Utc>>, ScoreOutput)> {
    let as_of = as_of(opts.as_of.as_deref())?;
    let output = match opts.format {
        ScoreFormat::Table => ScoreOutput::Table,
        ScoreFormat::Json => ScoreOutput::Json,
        ScoreFormat::Csv => ScoreOutput::Csv,
        ScoreFormat::Xlsx => ScoreOutput::Xlsx,
    };
    Ok((as_of, output))
}

/// The request of a key or proof command.
fn proofs(command: ProofsCommand) -> Result<ProofsRequest> {
    Ok(match command {
        ProofsCommand::Keys {
            what: KeysWhat::Init { origin },
        } => ProofsRequest::KeysInit { origin },
        ProofsCommand::Keys {
            what: KeysWhat::Show,
        } => ProofsRequest::KeysShow,
        ProofsCommand::Keys {
            what: KeysWhat::ImportCountySecret { file },
        } => ProofsRequest::ImportCountySecret { file },
        ProofsCommand::Keys {
            what: KeysWhat::Rotate,
        } => ProofsRequest::KeysRotate,
        ProofsCommand::Checkpoint { as_of: cut } => ProofsRequest::Checkpoint {
            as_of: as_of(cut.as_deref())?,
        },
        ProofsCommand::Prove {
            event: Some(id),
            checkpoint,
            out,
            ..
        } => ProofsRequest::ProveInclusion {
            id,
            checkpoint,
            out,
        },
        ProofsCommand::Prove {
            from: Some(from),
            out,
            ..
        } => ProofsRequest::ProveConsistency { from, out },
        ProofsCommand::Prove { .. } => {
            return Err(BadInput("prove: give an event id or --from FILE".into()).into());
        }
        ProofsCommand::Bundle {
            child,
            as_of: cut,
            out,
        } => ProofsRequest::Bundle {
            child,
            as_of: as_of(cut.as_deref())?,
            out,
        },
    })
}

/// The request a command line makes.
pub fn request(command: Command) -> Result<Request> {
    Ok(match command {
        Command::Init { origin } => Request::Init { origin },
        Command::Proofs(p) => Request::Proofs(proofs(p)?),
        Command::Import {
            files,
            preserve_recorded_at,
            dry_run,
            quiet,
            actor,
        } => Request::Import {
            files,
            preserve_recorded_at,
            dry_run,
            quiet,
            actor,
        },
        Command::Template { types, out } => Request::Template { types, out },
        Command::Record { r#type, json } => Request::Record { kind: r#type, json },
        Command::Verify => Request::Verify,
        Command::Migrate {
            from,
            to,
            from_keys,
            to_keys,
        } => Request::Migrate {
            from,
            to,
            from_keys,
            to_keys,
        },
        Command::Erase {
            child,
            basis,
            approved_by,
        } => Request::Erase {
            child,
            basis,
            approved_by,
        },
        Command::Retention {
            dry_run,
            on,
            approved_by,
            list: opts,
        } => {
            let list = list(opts)?;
            let on = date("--on", on.as_deref())?;
            Request::Retention {
                dry_run,
                on,
                approved_by,
                list,
            }
        }
        Command::Log {
            child,
            staff,
            kind,
            list: opts,
        } => {
            let list = list(opts)?;
            let kind = kind
                .map(|k| {
                    EventKind::parse(&k)
                        .ok_or_else(|| BadInput(format!("--type: unknown event type {k:?}")))
                })
                .transpose()?;
            Request::Log(LogOptions {
                child,
                staff,
                kind,
                list,
            })
        }
        Command::Export {
            what:
                ExportWhat::Events {
                    format,
                    out,
                    with_confidential,
                    decrypt,
                    as_of: cut,
                },
        } => {
            let as_of = as_of(cut.as_deref())?;
            match format {
                ExportFormat::Jsonl => Request::ExportJsonl(ExportOptions {
                    out,
                    with_confidential,
                    decrypt,
                    as_of,
                }),
                // The bureau feed never carries notes, whatever `--with-confidential` says.
                ExportFormat::Parquet => Request::ExportParquet { out, as_of },
            }
        }
        Command::Export {
            what:
                ExportWhat::ChildTerms {
                    term,
                    format: ChildTermsFormat::Parquet,
                    out,
                    county,
                    school,
                    as_of: cut,
                },
        } => {
            let as_of = as_of(cut.as_deref())?;
            let scope = match (school, county) {
                (Some(s), _) => Some(reports::Scope::School(s)),
                (None, Some(c)) => Some(reports::Scope::County(c)),
                (None, None) => None,
            };
            Request::ExportChildTerms {
                term,
                scope,
                out,
                as_of,
            }
        }
        Command::Report {
            what:
                ReportWhat::Term {
                    term,
                    school,
                    county,
                    as_of: cut,
                    format,
                    out,
                },
        } => {
            let as_of = as_of(cut.as_deref())?;
            let formats =
                reports::Format::parse_list(&format).map_err(|e| BadInput(e.to_string()))?;
            let scope = match (school, county) {
                (Some(s), _) => reports::Scope::School(s),
                (None, Some(c)) => reports::Scope::County(c),
                (None, None) => return Err(BadInput("give --school or --county".into()).into()),
            };
            Request::ReportTerm(ReportOptions {
                term,
                scope,
                as_of,
                formats,
                out,
            })
        }
        Command::Archive {
            child,
            valid_at,
            list: opts,
        } => {
            let list = list(opts)?;
            let valid_at = date("--valid-at", valid_at.as_deref())?;
            Request::Archive {
                child,
                valid_at,
                list,
            }
        }
        Command::Archives {
            school,
            incomplete,
            valid_at,
            list: opts,
        } => {
            let list = list(opts)?;
            let valid_at = date("--valid-at", valid_at.as_deref())?;
            Request::Archives {
                school,
                incomplete,
                valid_at,
                list,
            }
        }
        Command::ContactCard {
            child,
            on,
            list: opts,
        } => {
            let list = list(opts)?;
            let on = date("--on", on.as_deref())?;
            Request::ContactCard { child, on, list }
        }
        Command::History {
            child,
            role,
            list: opts,
        } => Request::History {
            child,
            counselor: role == Some(Role::Counselor),
            list: list(opts)?,
        },
        Command::Progress {
            child,
            role,
            list: opts,
        } => Request::Progress {
            child,
            counselor: role == Some(Role::Counselor),
            list: list(opts)?,
        },
        Command::Pairings {
            school,
            on,
            list: opts,
        } => {
            let list = list(opts)?;
            let on = date("--on", on.as_deref())?;
            Request::Pairings { school, on, list }
        }
        Command::Worklist {
            staff,
            on,
            list: opts,
        } => {
            // `--on` first: it also decides the as-of when none is given.
            let on = date("--on", on.as_deref())?;
            let list = list(opts)?;
            Request::Worklist { staff, on, list }
        }
        Command::Backfill {
            school,
            days,
            list: opts,
        } => Request::Backfill {
            school,
            days,
            list: list(opts)?,
        },
        Command::Scores {
            school,
            county,
            period,
            other_scores,
            staff,
            opts,
        } => {
            let (as_of, output) = score_opts(opts.clone())?;
            let period = Period::parse(&period).map_err(|e| BadInput(e.to_string()))?;
            let scope = match (school, county) {
                (Some(s), _) => reports::Scope::School(s),
                (None, Some(c)) => reports::Scope::County(c),
                (None, None) => return Err(BadInput("give --school or --county".into()).into()),
            };
            Request::Scores(ScoresOptions {
                scope,
                period,
                other_scores,
                drill_staff: staff,
                as_of,
                output,
                out: opts.out,
            })
        }
        Command::Policy {
            what:
                PolicyWhat::Adopt {
                    school,
                    from,
                    file,
                    actor,
                },
        } => Request::PolicyAdopt {
            school,
            from,
            file,
            actor,
        },
        Command::Policy {
            what:
                PolicyWhat::Show {
                    school,
                    on,
                    as_of: cut,
                },
        } => {
            let as_of = as_of(cut.as_deref())?;
            let on = date("--on", on.as_deref())?;
            Request::PolicyShow { school, on, as_of }
        }
        Command::Demo { keep } => Request::Demo { keep },
        Command::User { what } => Request::Accounts(accounts_request(what)?),
        Command::Token { what } => Request::Accounts(token_request(what)?),
        Command::AccessLog { child, actor } => {
            Request::Accounts(crate::commands::AccountsRequest::AccessLog { child, actor })
        }
        Command::Serve { listen, demo } => Request::Serve {
            listen: listen.parse().map_err(|_| {
                crate::CliError::Usage(format!(
                    "--listen: expected an address and port (127.0.0.1:8080), found {listen:?}"
                ))
            })?,
            demo,
        },
        Command::Fixtures {
            what:
                FixturesWhat::Generate {
                    schools,
                    children_per_school,
                    seed,
                    year,
                    county,
                    out,
                },
        } => Request::FixturesGenerate {
            config: fixtures::GenConfig {
                schools,
                children_per_school,
                seed,
                year,
                county,
            },
            out,
        },
    })
}

fn role(s: &str) -> Result<server::policy::Role> {
    server::policy::Role::parse(s).ok_or_else(|| {
        crate::CliError::Usage(format!(
            "--role: expected teacher, counselor, school_admin, inspector or bureau, found {s:?}"
        ))
        .into()
    })
}

fn accounts_request(what: crate::cli::UserWhat) -> Result<crate::commands::AccountsRequest> {
    use crate::cli::UserWhat as W;
    use crate::commands::AccountsRequest as R;
    Ok(match what {
        W::Add {
            user,
            role: r,
            staff,
            school,
            county,
            password_stdin,
        } => R::UserAdd {
            user,
            role: role(&r)?,
            staff,
            scope: match (school, county) {
                (Some(s), _) => server::policy::Scope::School(s),
                (None, Some(c)) => server::policy::Scope::County(c),
                (None, None) => {
                    return Err(crate::CliError::Usage(
                        "user add: give --school or --county".into(),
                    )
                    .into());
                }
            },
            password_stdin,
        },
        W::List => R::UserList,
        W::Disable { user } => R::UserDisable { user },
        W::Passwd {
            user,
            password_stdin,
        } => R::UserPasswd {
            user,
            password_stdin,
        },
    })
}

fn token_request(what: crate::cli::TokenWhat) -> Result<crate::commands::AccountsRequest> {
    use crate::cli::TokenWhat as W;
    use crate::commands::AccountsRequest as R;
    Ok(match what {
        W::Create {
            user,
            scope,
            days,
            label,
        } => R::TokenCreate {
            user,
            scope: match scope.as_str() {
                "read" => server::policy::TokenScope::Read,
                "record" => server::policy::TokenScope::Record,
                "all" => server::policy::TokenScope::All,
                other => {
                    return Err(crate::CliError::Usage(format!(
                        "--scope: expected read, record or all, found {other:?}"
                    ))
                    .into());
                }
            },
            days,
            label,
        },
        W::Revoke { id } => R::TokenRevoke { id },
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// The request of a command line, given as words separated by spaces.
    fn request(line: &str) -> crate::commands::Request {
        let cli =
            crate::cli::Cli::try_parse_from(line.split_whitespace()).expect("the arguments parse");
        super::request(cli.command).expect("the request resolves")
    }

    #[test]
    fn only_a_countys_report_and_scores_read_a_county() {
        for line in [
            "careledger report term --term 2025-2026-1 --county 黔东县",
            "careledger scores --county 黔东县 --period 2025-2026",
        ] {
            assert!(request(line).reads_a_county(), "{line}");
        }
        for line in [
            "careledger report term --term 2025-2026-1 --school s001",
            "careledger scores --school s001 --period 2025-2026",
            "careledger worklist --staff s001-t01",
            "careledger archive s001-c001",
        ] {
            assert!(!request(line).reads_a_county(), "{line}");
        }
    }
}
