//! Verdicts and the table the suite prints.

use std::fmt;
use std::time::Duration;

/// What a check expects of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An attack: the cluster or the pipeline must refuse it.
    Reject,
    /// A positive control: a legitimate principal doing its job must succeed.
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The attack was refused the expected way within the bound, and nothing got through.
    Rejected,
    /// The attack got through: records delivered or read, or an operation succeeded.
    Breached,
    /// Nothing got through, but the expected refusal was not observed within the bound
    /// (a hang, or a failure of another kind): not a proof of security, so a failure.
    Inconclusive,
    /// The positive control succeeded.
    Passed,
    /// The positive control failed: the suite cannot tell rejection from breakage.
    ControlFailed,
}

impl Verdict {
    pub fn is_ok(self) -> bool {
        matches!(self, Verdict::Rejected | Verdict::Passed)
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Rejected => "REJECTED",
            Verdict::Breached => "BREACHED",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::Passed => "PASSED",
            Verdict::ControlFailed => "CONTROL-FAILED",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.label())
    }
}

/// One check's result: a line of the table.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `scenario/check`, e.g. `wrong-password/producer`.
    pub name: String,
    pub principal: String,
    pub expect: Expect,
    pub verdict: Verdict,
    /// Time until the refusal (or the success) was observed.
    pub elapsed: Duration,
    /// The observed error or result, one line.
    pub observed: String,
}

impl Outcome {
    pub fn new(
        name: impl Into<String>,
        principal: impl Into<String>,
        expect: Expect,
        verdict: Verdict,
        elapsed: Duration,
        observed: impl Into<String>,
    ) -> Outcome {
        let observed: String = observed.into();
        Outcome {
            name: name.into(),
            principal: principal.into(),
            expect,
            verdict,
            elapsed,
            observed: one_line(&observed),
        }
    }

    /// A check that could not run at all (a missing file, an unreachable store).
    pub fn error(name: impl Into<String>, expect: Expect, error: &anyhow::Error) -> Outcome {
        let verdict = match expect {
            Expect::Reject => Verdict::Inconclusive,
            Expect::Accept => Verdict::ControlFailed,
        };
        Outcome::new(
            name,
            "-",
            expect,
            verdict,
            Duration::ZERO,
            format!("could not run: {error:#}"),
        )
    }
}

fn one_line(s: &str) -> String {
    const MAX: usize = 400;
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > MAX {
        let cut: String = flat.chars().take(MAX - 1).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// The verdict table and its summary line.
pub fn table(outcomes: &[Outcome]) -> String {
    let width = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!(
        "{:<width$}  {:<16}  {:<6}  {:<14}  {:>7}  OBSERVED\n",
        "CHECK", "PRINCIPAL", "EXPECT", "VERDICT", "TIME"
    );
    for o in outcomes {
        let expect = match o.expect {
            Expect::Reject => "reject",
            Expect::Accept => "accept",
        };
        out.push_str(&format!(
            "{:<width$}  {:<16}  {:<6}  {:<14}  {:>6.2}s  {}\n",
            o.name,
            o.principal,
            expect,
            o.verdict,
            o.elapsed.as_secs_f64(),
            o.observed
        ));
    }
    out.push_str(&summary(outcomes));
    out.push('\n');
    out
}

pub fn summary(outcomes: &[Outcome]) -> String {
    let count = |v: Verdict| outcomes.iter().filter(|o| o.verdict == v).count();
    let attacks = outcomes
        .iter()
        .filter(|o| o.expect == Expect::Reject)
        .count();
    let controls = outcomes.len() - attacks;
    format!(
        "{} of {attacks} attacks rejected ({} breached, {} inconclusive); {} of {controls} controls passed",
        count(Verdict::Rejected),
        count(Verdict::Breached),
        count(Verdict::Inconclusive),
        count(Verdict::Passed),
    )
}

/// True when every attack was rejected and every control passed (and there was a check).
pub fn all_ok(outcomes: &[Outcome]) -> bool {
    !outcomes.is_empty() && outcomes.iter().all(|o| o.verdict.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(expect: Expect, verdict: Verdict) -> Outcome {
        Outcome::new(
            "s/c",
            "p",
            expect,
            verdict,
            Duration::from_millis(1500),
            "e",
        )
    }

    #[test]
    fn one_failure_of_any_kind_fails_the_suite() {
        let ok = [
            outcome(Expect::Reject, Verdict::Rejected),
            outcome(Expect::Accept, Verdict::Passed),
        ];
        assert!(all_ok(&ok));
        for bad in [
            Verdict::Breached,
            Verdict::Inconclusive,
            Verdict::ControlFailed,
        ] {
            let mut v = ok.to_vec();
            v.push(outcome(Expect::Reject, bad));
            assert!(!all_ok(&v), "{bad}");
        }
        assert!(!all_ok(&[]), "an empty run proves nothing");
    }

    #[test]
    fn the_table_has_a_line_per_check_and_a_summary() {
        let t = table(&[
            outcome(Expect::Reject, Verdict::Rejected),
            outcome(Expect::Reject, Verdict::Breached),
            outcome(Expect::Accept, Verdict::Passed),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[1].contains("REJECTED") && lines[1].contains("1.50s"));
        assert_eq!(
            lines[4],
            "1 of 2 attacks rejected (1 breached, 0 inconclusive); 1 of 1 controls passed"
        );
    }

    #[test]
    fn observed_text_is_one_bounded_line() {
        let o = Outcome::new(
            "n",
            "p",
            Expect::Reject,
            Verdict::Rejected,
            Duration::ZERO,
            format!("a\nb {}", "x".repeat(500)),
        );
        assert!(!o.observed.contains('\n'));
        assert!(o.observed.chars().count() <= 400);
    }
}
