use super::*;

fn warned(m: &AppManifest, attr: &str) -> bool {
    m.warnings
        .iter()
        .any(|w| w.starts_with(&format!("{attr}: ")))
}

#[test]
fn applies_the_first_application() {
    let m = parse(
        "---
version: 1
applications:
- name: my-app
  buildpacks: [python, binary]
  stack: cflinuxfs4
  instances: 3
  memory: 512M
  disk_quota: 2G
  command: ./run web
  health-check-type: http
  health-check-http-endpoint: /healthz
  timeout: 120
  env:
    GREETING: hello
    COUNT: 3
    DEBUG: true
- name: other
",
    )
    .unwrap();
    assert_eq!(m.name.as_deref(), Some("my-app"));
    assert_eq!(m.buildpacks, Some(vec!["python".into(), "binary".into()]));
    assert_eq!(m.stack.as_deref(), Some("cflinuxfs4"));
    assert_eq!(
        (m.instances, m.memory_mb, m.disk_mb),
        (Some(3), Some(512), Some(2048))
    );
    assert_eq!(m.command.as_deref(), Some("./run web"));
    assert_eq!(
        m.health_check,
        Some(HealthCheck::Http {
            endpoint: "/healthz".into()
        })
    );
    assert_eq!(m.timeout_s, Some(120));
    let env: Vec<_> = m.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(env, ["COUNT=3", "DEBUG=true", "GREETING=hello"]);
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(
        m.warnings[0].contains("1 more ignored (\"other\")"),
        "{:?}",
        m.warnings
    );
}

#[test]
fn legacy_forms() {
    let m = parse("applications:\n- buildpack: binary\n  health-check-type: none\n").unwrap();
    assert_eq!(m.buildpacks, Some(vec!["binary".into()]));
    assert_eq!(m.health_check, Some(HealthCheck::Process));
    let m = parse("applications:\n- buildpacks: [default]\n  command: null\n").unwrap();
    assert_eq!(m.buildpacks, Some(vec![]));
    assert_eq!(m.command, None);
    let e = parse("applications:\n- buildpack: a\n  buildpacks: [b]\n").unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
    let m = parse("applications:\n- memory: 256M\n  disk-quota: 1gb\n").unwrap();
    assert_eq!((m.memory_mb, m.disk_mb), (Some(256), Some(1024)));
    // As the cf CLI: a size needs its unit (one grammar: a bare number would be bytes).
    let e = parse("applications:\n- memory: 256\n").unwrap_err();
    assert!(e.to_string().contains("needs a unit"), "{e}");
}

#[test]
fn unsupported_attributes_are_named_once_each() {
    let m = parse(
        "applications:
- name: a
  routes: [{route: a.example.com}]
  random-route: true
  services: [db]
  sidecars: []
  processes: [{type: worker, instances: 2}]
  frobnicate: 1
  health-check-http-endpoint: /h
  env: {SECRET: ((secret))}
extra: 1
",
    )
    .unwrap();
    for attr in [
        "routes",
        "random-route",
        "services",
        "sidecars",
        "frobnicate",
        "health-check-http-endpoint",
        "env",
        "extra",
    ] {
        let n = m
            .warnings
            .iter()
            .filter(|w| w.starts_with(&format!("{attr}: ")))
            .count();
        assert_eq!(n, 1, "{attr}: {:?}", m.warnings);
    }
    assert_eq!(m.warnings.len(), 8, "{:?}", m.warnings);
    assert_eq!(m.processes[0].kind, "worker");
    assert_eq!(m.processes[0].instances, Some(2));
    assert_eq!(m.env, [("SECRET".to_string(), "((secret))".to_string())]);
}

#[test]
fn empty_manifests_apply_nothing() {
    for text in ["", "applications: []\n", "applications:\n", "version: 1\n"] {
        let m = parse(text).unwrap();
        assert_eq!(m.name, None, "{text:?}");
        assert_eq!(m.warnings.len(), 1, "{text:?}: {:?}", m.warnings);
    }
    assert!(warned(&parse("applications: []").unwrap(), "applications"));
}

#[test]
fn refuses_what_it_cannot_use() {
    let err = |text: &str| parse(text).unwrap_err().to_string();
    assert!(err("applications: [{env: {1BAD: x}}]").contains("1BAD"));
    assert!(err("applications: [{env: {CF_STACK: x}}]").contains("platform owns it"));
    assert!(err("applications: [{env: {A: [1]}}]").contains("env.A"));
    assert!(err("applications: [{memory: lots}]").starts_with("memory: "));
    assert!(err("applications: [{memory: 0M}]").contains("at least 1M"));
    assert!(err("applications: [{instances: -1}]").starts_with("instances: "));
    assert!(err("applications: [{instances: two}]").starts_with("instances: "));
    assert!(err("applications: [{timeout: 0}]").starts_with("timeout: "));
    assert!(err("applications: [{timeout: 100000}]").starts_with("timeout: "));
    assert!(err("applications: [{health-check-type: tcp}]").contains("\"tcp\""));
    assert!(err(
        "applications: [{health-check-type: http, health-check-http-endpoint: 'no slash'}]"
    )
    .starts_with("health-check-http-endpoint: "));
    assert!(err("applications: [{buildpacks: [/etc/bp]}]").contains("no paths or URLs"));
    assert!(
        err("applications: [{buildpacks: ['https://github.com/x/y']}]")
            .contains("no paths or URLs")
    );
    assert!(err("applications: [{buildpacks: [../x]}]").contains("no paths"));
    assert!(err("applications: [{name: ''}]").starts_with("name: "));
    assert!(err("version: 2\napplications: []").starts_with("version: "));
    assert!(err("applications: {name: a}").starts_with("applications: "));
    assert!(err("- a\n- b\n").starts_with("manifest: "));
    assert!(err("applications: [{name: a, name: b}]").starts_with("not valid YAML"));
    assert!(err("applications: [").starts_with("not valid YAML"));
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("applications: [{name: *a11}]\n");
    let e = parse(&text).unwrap_err();
    assert!(matches!(e, ManifestError::Yaml(_)), "{e}");
}

#[test]
fn every_application_is_parsed_with_its_path() {
    let all = parse_all(
        "applications:\n- name: a\n  path: web\n  routes: []\n- name: b\n  memory: 64M\n  frob: 1\n",
    )
    .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0].name.as_deref(), all[0].path.as_deref()),
        (Some("a"), Some("web"))
    );
    assert!(warned(&all[0], "routes"), "{:?}", all[0].warnings);
    assert_eq!(
        (all[1].name.as_deref(), all[1].memory_mb),
        (Some("b"), Some(64))
    );
    assert!(
        warned(&all[1], "frob"),
        "each application keeps its warnings"
    );
    let e = parse_all("applications:\n- name: a\n- 3\n").unwrap_err();
    assert!(e.to_string().contains("applications[1]"), "{e}");
    // `parse` (dropship build) takes the first and names the rest.
    assert!(warned(
        &parse("applications:\n- name: a\n- name: b\n").unwrap(),
        "applications"
    ));
}

#[test]
fn processes_are_read_per_type_and_checked() {
    let m = parse(
        "applications:
- name: a
  processes:
  - type: web
    instances: 2
    health-check-type: http
    health-check-http-endpoint: /up
    timeout: 30
  - type: worker
    command: ./work
    memory: 256M
    colour: blue
",
    )
    .unwrap();
    assert_eq!(m.processes.len(), 2);
    let web = &m.processes[0];
    assert_eq!((web.instances, web.timeout_s), (Some(2), Some(30)));
    assert_eq!(
        web.health_check,
        Some(HealthCheck::Http {
            endpoint: "/up".into()
        })
    );
    let worker = &m.processes[1];
    assert_eq!(worker.command.as_deref(), Some("./work"));
    assert_eq!(worker.memory_mb, Some(256));
    assert!(m
        .warnings
        .iter()
        .any(|w| w.starts_with("processes[1].colour: ")));
    for (bad, words) in [
        ("[{type: web}, {type: web}]", "given twice"),
        ("[{instances: 1}]", "needs a type"),
        ("[{type: 'a b'}]", "processes.type"),
        ("[{type: w, instances: -1}]", "instances"),
        ("{type: w}", "expected a list"),
    ] {
        let e = parse(&format!("applications:\n- name: a\n  processes: {bad}\n")).unwrap_err();
        assert!(e.to_string().contains(words), "{bad}: {e}");
    }
}
