//! The CI recipes in docs/ci run as written: the `phoebe:` steps of the GitHub Actions workflow, and the scripts of
//! the Kubernetes Indexed Job, each with the environment its platform gives (matrix shard, completion index), on a
//! test app here. The merged report has every experiment of the plan once, its JUnit (parsed) a testcase per
//! experiment, and the merge exits as `exec` would, or 2 when a shard left no report. What the commands cannot
//! show is checked on the files: the jobs' wiring (matrix, artifact paths, the JUnit publisher and its
//! permission; the Kubernetes labels that order the steps and the shared volume).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::common::*;

fn docs(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ci").join(name)
}

/// The YAML documents of `path` as JSON, parsed by PyYAML (`None`, after a counted skip, where it is missing).
fn yaml(path: &Path) -> Option<Vec<Value>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        ])
        .arg(path)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            Some(serde_json::from_slice(&out.stdout).expect("JSON from PyYAML"))
        }
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("No module named 'yaml'"),
                "{} is not valid YAML:\n{err}",
                path.display()
            );
            skipped("python3-yaml is not installed (ci/setup installs it)");
            None
        }
        Err(e) => {
            skipped(&format!("no python3: {e}"));
            None
        }
    }
}

/// A directory with `phoebe` on it, for scripts that call phoebe by name.
fn bin_dir(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(phoebe_path(), bin.join("phoebe")).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// Runs `script` with `sh -euc` in `dir` with `env`; returns its exit status and output.
fn run(script: &str, dir: &Path, path: &str, env: &[(&str, String)]) -> (i32, String) {
    let mut cmd = Command::new("sh");
    cmd.arg("-euc")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("LD_LIBRARY_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The suite the recipes run here: `shapes` fails some of its calls by itself, at rates between 0 and 1, so the
/// plan has models to shard.
fn test_command() -> String {
    format!("{} 200", testapp("shapes").display())
}

fn load_report(dir: &Path) -> phoebe::model::Report {
    phoebe::files::load(&dir.join("report.json"), "report").expect("report.json")
}

/// The merged report has every model of the plan as one experiment, once, and nothing pending; its JUnit
/// parses and has one testcase per experiment, by the same names; the other formats are there.
fn check_merged(merged: &Path, plan: &Path) {
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    let mut models: Vec<String> = plan["models"]
        .as_array()
        .expect("plan models")
        .iter()
        .map(|m| m["id"].as_str().expect("model id").to_owned())
        .collect();
    assert!(!models.is_empty(), "the plan has models to shard");
    models.sort();
    let report = load_report(merged);
    let mut experiments: Vec<String> = report.experiments.iter().map(|e| e.id.clone()).collect();
    experiments.sort();
    assert_eq!(experiments, models, "every experiment of the plan once");
    assert!(report.pending.is_empty() && !report.interrupted);
    assert_eq!(report.shard, None, "the merged report is the whole campaign");
    let (mut cases, _) = crate::exec::parse_junit(&merged.join("junit.xml"));
    cases.sort();
    assert_eq!(cases, models, "one testcase per experiment");
    assert!(merged.join("summary.md").is_file() && merged.join("report.html").is_file());
}

/// Does the merged report fail on `fail_on` (the `--fail-on` list the recipe gives)?
fn fails(merged: &Path, fail_on: &str) -> bool {
    let rules: Vec<phoebe::model::FailOn> = fail_on
        .split(',')
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{v}: {e}")))
        .collect();
    load_report(merged).fails_on_tiers(&rules)
}

/// The value of a workflow or container setting that is a plain string (not a `${{ … }}` expression).
fn plain(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.contains("${{")).map(str::to_owned)
}

#[test]
fn the_github_actions_workflow_runs_as_written() {
    if !ptrace_works() || !Backend::Seccomp.works() {
        return;
    }
    let Some(docs) = yaml(&docs("github-actions.yml")) else {
        return;
    };
    let workflow = &docs[0];
    let steps = |job: &str| -> Vec<Value> {
        workflow["jobs"][job]["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("job {job} has steps"))
            .clone()
    };
    let step = |job: &str, name: &str| -> String {
        steps(job)
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["run"].as_str())
            .unwrap_or_else(|| panic!("job {job} has a step {name:?} with run"))
            .to_owned()
    };
    let uses = |job: &str, action: &str| -> Vec<Value> {
        steps(job)
            .into_iter()
            .filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
            .collect()
    };

    // The environment: the workflow's own plain values; what GitHub fills in, the test app's here.
    let given = [
        ("TEST_COMMAND", test_command()),
        // ${{ github.run_id }}: one number for the whole workflow run.
        ("SEED", "4242".to_owned()),
    ];
    let mut env: Vec<(&str, String)> = Vec::new();
    for (k, v) in workflow["env"].as_object().expect("workflow env") {
        if let Some(v) = plain(v) {
            env.push((k.as_str(), v));
        } else if let Some((k, v)) = given.iter().find(|(g, _)| g == k) {
            env.push((k, v.clone()));
        }
        // The others (PHOEBE_GIT, PHOEBE_REF, BUILD_COMMAND) are for the steps not run here.
    }
    let var = |name: &str| -> String {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("workflow env {name}"))
    };
    let shards: u32 = var("SHARDS").parse().unwrap();
    let fail_on = var("FAIL_ON");
    var("TEST_COMMAND");
    var("SEED");

    // The wiring between the jobs: one matrix entry per shard, each shard's directory as an artifact the merge
    // finds under shards/, the merge's JUnit published.
    let matrix: Vec<u64> = workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_u64().unwrap())
        .collect();
    assert_eq!(
        matrix,
        (1..=u64::from(shards)).collect::<Vec<_>>(),
        "one matrix entry per shard"
    );
    assert_eq!(workflow["jobs"]["shard"]["strategy"]["fail-fast"], false);
    assert_eq!(
        uses("shard", "actions/upload-artifact")[0]["with"]["path"],
        "shards/shard-${{ matrix.shard }}"
    );
    assert_eq!(
        uses("merge", "actions/download-artifact")[1]["with"]["path"],
        "shards"
    );
    let junit = uses("merge", "mikepenz/action-junit-report");
    assert_eq!(junit[0]["with"]["report_paths"], "merged/junit.xml");
    assert_eq!(
        workflow["permissions"]["checks"], "write",
        "the JUnit publisher needs it"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = bin_dir(dir.path());
    let (status, out) = run(&step("plan", "phoebe: plan"), dir.path(), &path, &env);
    assert_eq!(status, 0, "plan:\n{out}");
    for k in 1..=shards {
        let mut env = env.clone();
        env.push(("SHARD", k.to_string()));
        let (status, out) = run(&step("shard", "phoebe: shard"), dir.path(), &path, &env);
        assert_eq!(status, 0, "shard {k}:\n{out}");
    }
    let summary = dir.path().join("step-summary.md");
    let mut env = env.clone();
    env.push(("GITHUB_STEP_SUMMARY", summary.display().to_string()));
    let merge = step("merge", "phoebe: merge");
    let (status, out) = run(&merge, dir.path(), &path, &env);
    let merged = dir.path().join("merged");
    assert_eq!(
        status,
        i32::from(fails(&merged, &fail_on)),
        "merge exits as exec would:\n{out}"
    );
    check_merged(&merged, &dir.path().join("plan.json"));
    let published = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(
        published,
        std::fs::read_to_string(merged.join("summary.md")).unwrap()
    );

    // A shard whose job failed leaves no artifact: the merge fails, naming it.
    std::fs::remove_dir_all(dir.path().join("shards/shard-2")).unwrap();
    let (status, out) = run(&merge, dir.path(), &path, &env);
    assert_eq!(status, 2, "{out}");
    assert!(out.contains(&format!("shard 2/{shards} left no report")), "{out}");
}

#[test]
fn the_kubernetes_indexed_job_runs_as_written() {
    if !ptrace_works() || !Backend::Seccomp.works() {
        return;
    }
    let path_of = docs("k8s-indexed-job.yaml");
    let Some(docs) = yaml(&path_of) else {
        return;
    };
    let text = std::fs::read_to_string(&path_of).unwrap();
    let container = |doc: &Value| doc["spec"]["template"]["spec"]["containers"][0].clone();
    let named = |name: &str| -> &Value {
        docs.iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no object {name}"))
    };
    let shards_job = named("phoebe-shards");
    let merge_job = named("phoebe-merge");
    assert_eq!(shards_job["spec"]["completionMode"], "Indexed");
    let completions = shards_job["spec"]["completions"].as_u64().unwrap();
    // The steps the header gives: each `kubectl apply -l phoebe-step=…` creates its objects only, so the merge
    // starts after the shards; the volume comes with the shards.
    for step in ["shards", "merge"] {
        assert!(
            text.contains(&format!("-l phoebe-step={step}")),
            "the header applies {step}"
        );
    }
    for (name, step) in [
        ("phoebe-results", "shards"),
        ("phoebe-shards", "shards"),
        ("phoebe-merge", "merge"),
    ] {
        assert_eq!(named(name)["metadata"]["labels"]["phoebe-step"], step, "{name}");
    }
    assert!(
        docs.iter()
            .all(|d| d["metadata"]["labels"]["phoebe-step"].is_string())
    );
    let claim = |job: &Value| {
        job["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "results")
            .map(|v| v["persistentVolumeClaim"]["claimName"].clone())
            .unwrap()
    };
    assert_eq!(claim(shards_job), "phoebe-results");
    assert_eq!(claim(merge_job), "phoebe-results");

    let env_of = |c: &Value, name: &str| -> String {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| plain(&e["value"]))
            .unwrap_or_else(|| panic!("env {name}"))
    };
    let shard = container(shards_job);
    let merge = container(merge_job);
    assert_eq!(env_of(&shard, "SHARDS"), completions.to_string());
    assert_eq!(env_of(&merge, "SHARDS"), completions.to_string());
    assert_eq!(shard["command"], serde_json::json!(["/bin/sh", "-euc"]));
    assert_eq!(merge["command"], serde_json::json!(["/bin/sh", "-euc"]));

    let dir = tempfile::tempdir().unwrap();
    let path = bin_dir(dir.path());
    let test_command = test_command();
    // What `phoebe observe` + `phoebe synthesize` before `kubectl create configmap` make.
    let plan = dir.path().join("plan.json");
    let (status, out) = run(
        "phoebe observe -q -o obs.json -- sh -c \"$TEST_COMMAND\" && phoebe synthesize obs.json -o plan.json",
        dir.path(),
        &path,
        &[("TEST_COMMAND", test_command.clone())],
    );
    assert_eq!(status, 0, "{out}");
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    for index in 0..completions {
        let env = vec![
            ("SHARDS", env_of(&shard, "SHARDS")),
            ("SEED", env_of(&shard, "SEED")),
            ("TEST_COMMAND", test_command.clone()),
            ("PLAN", plan.display().to_string()),
            ("RESULTS", results.display().to_string()),
            ("JOB_COMPLETION_INDEX", index.to_string()),
        ];
        let (status, out) = run(shard["args"][0].as_str().unwrap(), dir.path(), &path, &env);
        assert_eq!(status, 0, "completion index {index}:\n{out}");
        let k = index + 1;
        assert_eq!(
            load_report(&results.join(format!("shard-{k}"))).shard.as_deref(),
            Some(format!("{k}/{completions}").as_str()),
            "index {index} is shard {k}"
        );
    }
    let fail_on = env_of(&merge, "FAIL_ON");
    let env = vec![
        ("SHARDS", env_of(&merge, "SHARDS")),
        ("FAIL_ON", fail_on.clone()),
        ("RESULTS", results.display().to_string()),
    ];
    let script = merge["args"][0].as_str().unwrap();
    let (status, out) = run(script, dir.path(), &path, &env);
    let merged = results.join("merged");
    assert_eq!(
        status,
        i32::from(fails(&merged, &fail_on)),
        "merge exits as exec would:\n{out}"
    );
    check_merged(&merged, &plan);

    // An index that failed left no report: the merge Job fails, naming it.
    std::fs::remove_dir_all(results.join("shard-1")).unwrap();
    let (status, out) = run(script, dir.path(), &path, &env);
    assert_eq!(status, 2, "{out}");
    assert!(
        out.contains(&format!("shard 1/{completions} left no report")),
        "{out}"
    );
}
