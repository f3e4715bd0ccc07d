//! The CI recipes in docs/ci run as written: the `phoebe:` steps of the GitHub Actions workflow, and the scripts of
//! the Kubernetes Indexed Job, each with the environment its platform gives (matrix shard, completion index), on a
//! test app here. The merged report has every experiment of the plan once, its JUnit a testcase per experiment, and
//! the merge exits as `exec` would.

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

fn check_merged(merged: &Path, plan: &Path) {
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    let models = plan["models"].as_array().expect("plan models").len();
    assert!(models > 0, "the plan has models to shard");
    let report = load_report(merged);
    assert_eq!(report.experiments.len(), models, "every experiment once");
    assert!(report.pending.is_empty());
    let junit = std::fs::read_to_string(merged.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), models, "{junit}");
    assert!(merged.join("summary.md").is_file() && merged.join("report.html").is_file());
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
    let step = |job: &str, name: &str| -> String {
        workflow["jobs"][job]["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("job {job} has steps"))
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["run"].as_str())
            .unwrap_or_else(|| panic!("job {job} has a step {name:?} with run"))
            .to_owned()
    };
    let shards: u32 = workflow["env"]["SHARDS"].as_str().unwrap().parse().unwrap();
    let matrix = workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap();
    assert_eq!(matrix.len() as u32, shards, "one matrix entry per shard");
    let dir = tempfile::tempdir().unwrap();
    let path = bin_dir(dir.path());
    let env = vec![("TEST_COMMAND", test_command())];

    let (status, out) = run(&step("plan", "phoebe: plan"), dir.path(), &path, &env);
    assert_eq!(status, 0, "plan:\n{out}");
    for k in 1..=shards {
        let mut env = env.clone();
        env.push(("SHARD", k.to_string()));
        env.push(("SHARDS", shards.to_string()));
        // ${{ github.run_id }}: one number for the whole workflow run.
        env.push(("SEED", "4242".to_owned()));
        let (status, out) = run(&step("shard", "phoebe: shard"), dir.path(), &path, &env);
        assert_eq!(status, 0, "shard {k}:\n{out}");
    }
    let summary = dir.path().join("step-summary.md");
    let mut env = env.clone();
    env.push(("GITHUB_STEP_SUMMARY", summary.display().to_string()));
    let (status, out) = run(&step("merge", "phoebe: merge"), dir.path(), &path, &env);
    let merged = dir.path().join("merged");
    let report = load_report(&merged);
    let failing = report.fails_on(&[
        phoebe::model::Verdict::Failed,
        phoebe::model::Verdict::Crashed,
        phoebe::model::Verdict::Hung,
        phoebe::model::Verdict::Corrupted,
    ]);
    assert_eq!(status, i32::from(failing), "merge exits as exec would:\n{out}");
    check_merged(&merged, &dir.path().join("plan.json"));
    let published = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(
        published,
        std::fs::read_to_string(merged.join("summary.md")).unwrap()
    );
}

#[test]
fn the_kubernetes_indexed_job_runs_as_written() {
    if !ptrace_works() || !Backend::Seccomp.works() {
        return;
    }
    let Some(docs) = yaml(&docs("k8s-indexed-job.yaml")) else {
        return;
    };
    let container = |doc: &Value| doc["spec"]["template"]["spec"]["containers"][0].clone();
    let shards_job = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "phoebe-shards")
        .unwrap();
    let merge_job = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "phoebe-merge")
        .unwrap();
    assert_eq!(shards_job["spec"]["completionMode"], "Indexed");
    let completions = shards_job["spec"]["completions"].as_u64().unwrap();
    let shard = container(shards_job);
    let env_of = |c: &Value, name: &str| -> String {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("env {name}"))
            .to_owned()
    };
    assert_eq!(env_of(&shard, "SHARDS"), completions.to_string());
    assert_eq!(shard["command"], serde_json::json!(["/bin/sh", "-euc"]));

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
            ("SHARDS", completions.to_string()),
            ("SEED", env_of(&shard, "SEED")),
            ("TEST_COMMAND", test_command.clone()),
            ("PLAN", plan.display().to_string()),
            ("RESULTS", results.display().to_string()),
            ("JOB_COMPLETION_INDEX", index.to_string()),
        ];
        let (status, out) = run(shard["args"][0].as_str().unwrap(), dir.path(), &path, &env);
        assert_eq!(status, 0, "completion index {index}:\n{out}");
    }
    let merge = container(merge_job);
    let (status, out) = run(
        merge["args"][0].as_str().unwrap(),
        dir.path(),
        &path,
        &[("RESULTS", results.display().to_string())],
    );
    assert!(status == 0 || status == 1, "merge:\n{out}");
    check_merged(&results.join("merged"), &plan);
}
