//! The command line: who may change which tier, checked offline. Run as
//! `palisade-ownership review|can-i ...` or as `palisade review|can-i ...` (the same code).
//!
//! ```text
//! palisade-ownership review --rbac PATH... --as USER [--as-group G]... --base PATH... --head PATH...
//!                           [--format table|json|markdown] [--update-verb update|patch]
//! palisade-ownership can-i VERB KIND [NAME] --rbac PATH... --as USER [--as-group G]...
//!                          [--namespace NS] [--tier T]... [-v]
//! ```
//!
//! Exit status: 0 allowed (every change, or the one question), 4 something is not allowed,
//! 1 a bundle or the RBAC cannot be read (message on stderr), 2 usage errors.

use std::io::Write;
use std::process::ExitCode;

use crate::calico::{Kind, Operation, authorize};
use crate::rbac::{Rbac, User};
use crate::review::{Format, Verbs, load_bundle, render, review};
use palisade::Config;

const USAGE: &str = "usage:
  palisade-ownership review --rbac PATH... --as USER [--as-group G]... --base PATH... --head PATH...
                            [--format table|json|markdown] [--update-verb update|patch]
  palisade-ownership can-i VERB KIND [NAME] --rbac PATH... --as USER [--as-group G]...
                           [--namespace NS] [--tier T]... [-v]

KIND: np (networkpolicies.projectcalico.org), gnp, snp, sgnp, knp (networkpolicies, Kubernetes'),
      iap (authorizationpolicies), tier, gns (globalnetworksets), netset (networksets)
exit status: 0 allowed, 4 not allowed, 1 unreadable input, 2 usage";

struct Args {
    positional: Vec<String>,
    rbac: Vec<String>,
    user: Option<String>,
    groups: Vec<String>,
    base: Vec<String>,
    head: Vec<String>,
    format: Format,
    update_verb: String,
    namespace: Option<String>,
    tiers: Vec<String>,
    verbose: bool,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut a = Args {
        positional: Vec::new(),
        rbac: Vec::new(),
        user: None,
        groups: Vec::new(),
        base: Vec::new(),
        head: Vec::new(),
        format: Format::Table,
        update_verb: "update".into(),
        namespace: None,
        tiers: Vec::new(),
        verbose: false,
    };
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().cloned().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "--rbac" => a.rbac.push(value()?),
            "--as" => a.user = Some(value()?),
            "--as-group" => a.groups.push(value()?),
            "--base" => a.base.push(value()?),
            "--head" => a.head.push(value()?),
            "--format" => {
                let v = value()?;
                a.format = Format::parse(&v).ok_or_else(|| format!("--format {v:?}: table, json or markdown"))?;
            }
            "--update-verb" => {
                let v = value()?;
                if v != "update" && v != "patch" {
                    return Err(format!("--update-verb {v:?}: update or patch"));
                }
                a.update_verb = v;
            }
            "--namespace" | "-n" => a.namespace = Some(value()?),
            "--tier" => a.tiers.push(value()?),
            "-v" | "--verbose" => a.verbose = true,
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown option {f}")),
            _ => a.positional.push(arg.clone()),
        }
    }
    Ok(a)
}

enum Failure {
    Usage(String),
    Input(String),
}

fn user_and_rbac(a: &Args) -> Result<(User, Rbac), Failure> {
    let name = a.user.clone().ok_or_else(|| Failure::Usage("--as USER is required".into()))?;
    if a.rbac.is_empty() {
        return Err(Failure::Usage("--rbac PATH is required".into()));
    }
    let rbac = Rbac::from_paths(&a.rbac).map_err(|e| Failure::Input(format!("rbac: {e}")))?;
    Ok((User::new(name, a.groups.clone()), rbac))
}

fn run(argv: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<bool, Failure> {
    let Some(cmd) = argv.first() else { return Err(Failure::Usage("no command".into())) };
    let a = parse(&argv[1..]).map_err(Failure::Usage)?;
    match cmd.as_str() {
        "review" => {
            if !a.positional.is_empty() {
                return Err(Failure::Usage(format!("unexpected argument {:?}", a.positional[0])));
            }
            if a.base.is_empty() || a.head.is_empty() {
                return Err(Failure::Usage("--base PATH and --head PATH are required".into()));
            }
            let (user, rbac) = user_and_rbac(&a)?;
            for d in rbac.dangling_references() {
                let _ = writeln!(err, "palisade-ownership: warning: binding to a missing role: {d}");
            }
            let config = Config::default();
            let base = load_bundle(&a.base, &config).map_err(|e| Failure::Input(format!("base: {e}")))?;
            let head = load_bundle(&a.head, &config).map_err(|e| Failure::Input(format!("head: {e}")))?;
            let r = review(&rbac, &user, &base, &head, &Verbs { update: a.update_verb.clone() });
            let _ = out.write_all(render(&r, a.format).as_bytes());
            Ok(r.allowed())
        }
        "can-i" => {
            let (verb, kind, name) = match a.positional.as_slice() {
                [v, k] => (v, k, ""),
                [v, k, n] => (v, k, n.as_str()),
                _ => return Err(Failure::Usage("can-i takes VERB KIND [NAME]".into())),
            };
            let kind = Kind::parse(kind).ok_or_else(|| Failure::Usage(format!("unknown kind {kind:?}")))?;
            let (user, rbac) = user_and_rbac(&a)?;
            let op = Operation {
                verb,
                kind,
                namespace: a.namespace.as_deref(),
                name,
                tiers: a.tiers.iter().map(String::as_str).collect(),
            };
            let o = authorize(&rbac, &user, &op);
            let _ = match o.denial() {
                None => writeln!(out, "yes"),
                Some(d) => writeln!(out, "no\n{d}"),
            };
            if a.verbose {
                for s in &o.steps {
                    let _ = writeln!(out, "  {} {}: {}", if s.allowed { "+" } else { "-" }, s.asked, s.message);
                }
            }
            Ok(o.allowed)
        }
        "help" | "--help" | "-h" => {
            let _ = writeln!(out, "{USAGE}");
            Ok(true)
        }
        c => Err(Failure::Usage(format!("unknown command {c:?}"))),
    }
}

/// Runs `review` or `can-i` with `argv` (the command first) and returns the exit status.
pub fn main(argv: &[String]) -> ExitCode {
    let argv = argv.to_vec();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match run(&argv, &mut out, &mut err) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(4),
        Err(Failure::Input(m)) => {
            let _ = writeln!(err, "palisade-ownership: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(m)) => {
            let _ = writeln!(err, "palisade-ownership: {m}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
