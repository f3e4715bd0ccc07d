//! The examples in `docs/formats.md` are real, valid files: each fenced block tagged `json observation`,
//! `json injection-log`, `json plan` or `json campaign` loads through `phoebe::files::load` into its model type, every field it shows is explained in
//! the prose, and every fault rule the page shows parses (STYLE 10).

use std::path::{Path, PathBuf};

use phoebe::{
    files,
    model::{Errno, FORMAT_VERSION, FaultSpec, InjectionLog, Observation, Syscall, TargetExit, When},
};
use serde_json::Value;

const OBSERVATION_TAG: &str = "json observation";
const LOG_TAG: &str = "json injection-log";
const PLAN_TAG: &str = "json plan";
const CAMPAIGN_TAG: &str = "json campaign";

fn formats_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/formats.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every fenced block of a Markdown text as (info string, body). A block opens with a line starting with three
/// backticks and closes with the next line that is only backticks.
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Vec<&str>)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        match open.take() {
            None => {
                open = trimmed
                    .strip_prefix("```")
                    .map(|info| (info.trim().to_owned(), Vec::new()))
            }
            Some((info, body)) if trimmed == "```" => blocks.push((info, body.join("\n"))),
            Some((info, mut body)) => {
                body.push(line);
                open = Some((info, body));
            }
        }
    }
    assert!(open.is_none(), "docs/formats.md ends inside a fenced block");
    blocks
}

/// The body of the one block whose info string is exactly `tag`.
fn only_block(tag: &str) -> String {
    let blocks = fenced_blocks(&formats_md());
    let mut matching: Vec<String> = blocks
        .into_iter()
        .filter(|(info, _)| info == tag)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "docs/formats.md must have exactly one ```{tag} block"
    );
    matching.remove(0)
}

/// Writes `body` to a temporary file and loads it the way phoebe loads its own files (version check included).
fn load_example<T: serde::de::DeserializeOwned>(body: &str, what: &'static str) -> T {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("example.json");
    std::fs::write(&path, body).expect("write example");
    files::load(&path, what).unwrap_or_else(|e| panic!("the {what} example does not load: {e}"))
}

/// The example must be exactly what phoebe would write for the value it describes: no field the model does not
/// have (serde would silently ignore it), nothing left out, names in canonical form.
fn assert_reserializes<T: serde::Serialize>(value: &T, body: &str, what: &str) {
    let shown: Value = serde_json::from_str(body).expect("valid JSON");
    let written = serde_json::to_value(value).expect("serialize");
    assert_eq!(
        shown, written,
        "the {what} example differs from what phoebe writes for the same data"
    );
}

/// Names of the struct fields in an example: object keys, except the keys of the maps keyed by syscall or errno.
fn field_names(value: &Value, parent: Option<&str>, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            // `syscalls` of an interval, `errors` and `shapes` are keyed by syscall, errno or shape, not by fields.
            let is_name_map = matches!(parent, Some("syscalls" | "errors" | "shapes"));
            for (key, child) in map {
                if !is_name_map && !out.contains(key) {
                    out.push(key.clone());
                }
                field_names(child, if is_name_map { None } else { Some(key) }, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| field_names(item, parent, out)),
        _ => {}
    }
}

/// Every field an example shows is explained in the prose as a `- `name` — …` item.
fn assert_fields_documented(body: &str, what: &str) {
    let text = formats_md();
    let mut fields = Vec::new();
    field_names(
        &serde_json::from_str(body).expect("valid JSON"),
        None,
        &mut fields,
    );
    assert!(
        fields.len() >= 8,
        "too few fields found in the {what} example: {fields:?}"
    );
    for field in fields {
        let item = format!("- `{field}` —");
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&item)),
            "field `{field}` of the {what} example is not explained in docs/formats.md"
        );
    }
}

fn sc(name: &str) -> Syscall {
    Syscall::parse(name).expect("syscall name")
}

#[test]
fn formats_md_has_one_example_of_each_format() {
    let blocks = fenced_blocks(&formats_md());
    let count = |tag: &str| blocks.iter().filter(|(info, _)| info == tag).count();
    assert_eq!(count(OBSERVATION_TAG), 1, "{blocks:?}");
    assert_eq!(count(LOG_TAG), 1, "{blocks:?}");
    assert_eq!(count(PLAN_TAG), 1, "{blocks:?}");
    assert_eq!(count(CAMPAIGN_TAG), 1, "{blocks:?}");
    // A typo in a tag would silently hide an example from the tests below.
    for (info, _) in &blocks {
        if info.starts_with("json") {
            assert!(
                [OBSERVATION_TAG, LOG_TAG, PLAN_TAG, CAMPAIGN_TAG].contains(&info.as_str()),
                "unknown example tag '```{info}'"
            );
        }
    }
}

#[test]
fn observation_example_loads_and_is_consistent() {
    let body = only_block(OBSERVATION_TAG);
    let obs: Observation = load_example(&body, "observation");
    assert_eq!(obs.version, FORMAT_VERSION);
    assert_eq!(obs.version, 2);
    assert_eq!(obs.backend, "ptrace");
    assert_eq!(obs.exit, Some(TargetExit::Code(0)));
    assert!(!obs.interrupted);
    assert_eq!(obs.syscalls, None);
    // Two intervals of 500 ms cover a 623 ms run.
    assert_eq!(
        (obs.interval_ms, obs.duration_ms, obs.intervals.len()),
        (500, 623, 2)
    );
    assert_eq!(
        obs.intervals.len() as u64,
        obs.duration_ms.div_ceil(obs.interval_ms)
    );
    let enoent = Errno::parse("ENOENT").expect("errno");
    assert_eq!(obs.intervals[0].syscalls[&sc("openat")].errors[&enoent], 32);
    assert!(obs.intervals[1].syscalls.contains_key(&sc("clock_nanosleep")));
    let totals = obs.totals();
    assert_eq!(
        (totals[&sc("openat")].calls, totals[&sc("openat")].failures()),
        (102, 45)
    );
    for interval in &obs.intervals {
        for (syscall, stats) in &interval.syscalls {
            assert!(
                stats.failures() <= stats.calls,
                "{syscall}: more failures than calls"
            );
            assert!(
                stats.latency_ns_max <= stats.latency_ns_sum,
                "{syscall}: max latency above the sum"
            );
            assert!(stats.calls > 0, "{syscall}: listed with no completed call");
        }
    }
    assert_reserializes(&obs, &body, "observation");
    assert_fields_documented(&body, "observation");
}

#[test]
fn injection_log_example_loads_and_is_consistent() {
    let body = only_block(LOG_TAG);
    let log: InjectionLog = load_example(&body, "injection log");
    assert_eq!(log.version, FORMAT_VERSION);
    assert_eq!(log.version, 2);
    assert_eq!(log.seed, 7);
    assert!(!log.replayed);
    assert_eq!(log.exit, Some(TargetExit::Code(1)));
    assert_eq!(log.rules.len(), 2);
    assert_eq!(log.rules[0].fault.path.as_deref(), Some("/etc/*"));
    assert_eq!(log.rules[1].fault.max, Some(3));
    assert_eq!(log.injections.len(), 4);
    assert!(
        log.injections
            .iter()
            .all(|i| i.thread.is_some() && i.thread_index.is_some())
    );
    for (i, rule) in log.rules.iter().enumerate() {
        let made = log.injections.iter().filter(|inj| inj.rule == i).count() as u64;
        assert_eq!(
            rule.injected, made,
            "rule {i} ({}) counts another number of injections",
            rule.fault
        );
        assert!(
            rule.injected <= rule.matched,
            "rule {i} injected more calls than it matched"
        );
    }
    let mut last_t = 0;
    for inj in &log.injections {
        let rule = &log.rules[inj.rule].fault;
        assert!(
            rule.syscalls.contains(&inj.syscall),
            "{inj:?} is not a syscall of its rule {rule}"
        );
        assert!(
            rule.errnos
                .iter()
                .any(|(e, _)| phoebe::model::Effect::Errno(*e) == inj.effect),
            "{inj:?} is not an errno of its rule {rule}"
        );
        assert_eq!(inj.when, rule.when);
        assert!(
            inj.t_ns >= last_t,
            "injections are listed in the order they were made"
        );
        last_t = inj.t_ns;
    }
    // (syscall, index) is the replay key: it must be unique.
    let mut keys: Vec<(Syscall, u64)> = log.injections.iter().map(|i| (i.syscall, i.index)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        log.injections.len(),
        "two injections share a (syscall, index)"
    );
    assert_eq!(log.injections[0].when, When::Entry);
    assert_reserializes(&log, &body, "injection log");
    assert_fields_documented(&body, "injection log");
}

#[test]
fn fault_strings_in_the_log_example_are_canonical() {
    let body = only_block(LOG_TAG);
    let value: Value = serde_json::from_str(&body).expect("valid JSON");
    let rules = value["rules"].as_array().expect("rules is an array");
    assert!(!rules.is_empty(), "the example has no rule");
    for rule in rules {
        let text = rule["fault"].as_str().expect("fault is a string");
        let parsed = FaultSpec::parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parsed.to_string(),
            text,
            "the example should show the canonical form"
        );
        assert_eq!(
            FaultSpec::parse(&parsed.to_string()).expect("canonical form parses"),
            parsed
        );
    }
}

/// The backticked rules on `- fault:` lines of docs/formats.md.
fn listed_faults() -> Vec<String> {
    let mut faults = Vec::new();
    for line in formats_md().lines() {
        let Some(rest) = line.trim_start().strip_prefix("- fault:") else {
            continue;
        };
        let spans: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let first = spans
            .first()
            .unwrap_or_else(|| panic!("no `rule` on the line '{line}'"));
        faults.push((*first).to_owned());
    }
    faults
}

#[test]
fn listed_fault_examples_parse() {
    let faults = listed_faults();
    assert!(
        faults.len() >= 5,
        "expected a list of `- fault:` examples in docs/formats.md, found {faults:?}"
    );
    for text in &faults {
        let parsed = FaultSpec::parse(text).unwrap_or_else(|e| panic!("docs/formats.md: {e}"));
        let canonical = parsed.to_string();
        let again =
            FaultSpec::parse(&canonical).unwrap_or_else(|e| panic!("canonical form of '{text}': {e}"));
        assert_eq!(
            again.to_string(),
            canonical,
            "the canonical form of '{text}' is not stable"
        );
    }
    // What the page says about two of them.
    let strace = faults
        .iter()
        .find(|f| f.starts_with("inject="))
        .expect("a strace-form example");
    assert_eq!(
        FaultSpec::parse(strace).expect("parses").to_string(),
        "openat:EACCES:after=2"
    );
    let numeric = faults
        .iter()
        .find(|f| f.starts_with("257:"))
        .expect("a numeric example");
    assert_eq!(
        FaultSpec::parse(numeric).expect("parses").to_string(),
        "openat:ENOENT:p=0.5"
    );
}

#[test]
fn plan_example_loads_and_its_numbers_follow_the_rules() {
    let body = only_block(PLAN_TAG);
    let plan: phoebe::model::Plan = load_example(&body, "plan");
    assert_reserializes(&plan, &body, "plan");
    assert_fields_documented(&body, "plan");
    assert!(!plan.models.is_empty() && !plan.excluded.is_empty());
    for m in &plan.models {
        let natural = m.stats.natural_rate();
        let p = ((m.target_rate - natural) / (1.0 - natural)).clamp(0.0, 1.0);
        assert!(
            (m.probability - p).abs() < 1e-6,
            "{}: p {} vs {p}",
            m.id,
            m.probability
        );
        assert_eq!(
            m.fault.to_string(),
            format!("{}:{}:p={}", m.syscall, m.action, m.probability)
        );
        assert_eq!(m.id, format!("{}-{}", m.syscall, m.action.id_part()));
        assert!(m.stats.p5 <= m.stats.quantile && m.stats.quantile <= m.stats.max);
    }
}

/// The campaign example loads, is what phoebe writes, explains every field, and its fingerprint is the digest of
/// its own settings (a change to the digest or to what it covers shows here, and in the page).
#[test]
fn campaign_example_loads_and_its_fingerprint_is_its_own() {
    let body = only_block(CAMPAIGN_TAG);
    let campaign: phoebe::experiment::Campaign = load_example(&body, "campaign");
    assert_reserializes(&campaign, &body, "campaign");
    assert_fields_documented(&body, "campaign");
    assert_eq!(campaign.fingerprint, campaign.fingerprint());
    assert_eq!(campaign.runs, 3);
    assert_eq!(campaign.baseline_runs, 3, "the default");
}

/// The catalogue example is a valid catalogue whose entries are in the shipped one, and the page's entry count is
/// the shipped catalogue's.
#[test]
fn catalogue_example_is_shipped_and_counted() {
    use phoebe::model::catalogue;
    let example =
        catalogue::parse(&only_block("toml catalogue")).unwrap_or_else(|e| panic!("docs/formats.md: {e}"));
    assert!(!example.is_empty());
    for entry in &example {
        let shipped = catalogue::entries()
            .iter()
            .find(|e| e.syscall == entry.syscall && e.action == entry.action && e.shape == entry.shape)
            .unwrap_or_else(|| {
                panic!(
                    "docs/formats.md shows {} {}, which the catalogue lacks",
                    entry.syscall, entry.action
                )
            });
        assert_eq!(shipped.condition, entry.condition, "{}", shipped.id);
        assert_eq!(shipped.source, entry.source, "{}", shipped.id);
        assert_eq!(shipped.when, entry.when, "{}", shipped.id);
    }
    let count = format!(
        "{} entries, one per (syscall, shape class, errno)",
        catalogue::entries().len()
    );
    assert!(
        formats_md().contains(&count),
        "docs/formats.md should say '{count}'"
    );
}
