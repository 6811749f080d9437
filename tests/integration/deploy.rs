//! The deployment files under `deploy/`, read the way their consumers read them. No container
//! engine or cluster runs here, so these checks are what keeps the files honest:
//!
//! - every YAML file under `deploy/` parses (all its documents) and every TOML file under
//!   `deploy/` and `config/` parses;
//! - every gateway configuration loads with the gateway's own loader (`check-config`'s code):
//!   `deploy/gateway.example.toml`, `config/dev.toml`, and the Kubernetes ConfigMaps laid out
//!   exactly as `deployment.yaml` mounts them, kubelet symlinks included;
//! - the structural promises: the Deployment's replicas, probes, hardening and mounts; the
//!   Dockerfile's stages, user and entrypoint; the systemd unit's `ExecStart` and
//!   `NoNewPrivileges`; the client pod's projected token and exchange sidecar; the GitLab CI
//!   jobs; and that the examples agree with each other (the audiences, subjects and service
//!   accounts the clients use are the ones the ConfigMaps bind).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_norway::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every file under `dir` (recursively) whose extension is one of `extensions`, sorted.
fn files_under(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("listing {}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| extensions.contains(&x))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The documents of a YAML file (`---`-separated), empty ones dropped.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .enumerate()
        .map(|(i, document)| {
            Value::deserialize(document).unwrap_or_else(|e| {
                panic!("{}: document {i} is not valid YAML: {e}", path.display())
            })
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn kubernetes(file: &str) -> Vec<Value> {
    yaml_documents(&repo().join("deploy/kubernetes").join(file))
}

/// The object of `kind` named `name` among `docs`.
fn object<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} named {name:?}"))
}

/// The only object of `kind` among `docs`.
fn only<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, found {}",
        found.len()
    );
    found[0]
}

fn items(v: &Value) -> &[Value] {
    v.as_sequence().map_or(&[], Vec::as_slice)
}

fn text<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} must be a string, is {v:?}"))
}

/// The strings of a sequence (a container's `command` or `args`).
fn strings(v: &Value) -> Vec<&str> {
    items(v).iter().filter_map(Value::as_str).collect()
}

/// The value following `flag` in `args`.
fn flag<'a>(args: &[&'a str], flag: &str, whose: &str) -> &'a str {
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1))
        .copied()
        .unwrap_or_else(|| panic!("{whose}: no {flag} VALUE in {args:?}"))
}

/// A container's security setting, or the pod's when the container does not set it.
fn effective<'a>(container: &'a Value, pod_spec: &'a Value, key: &str) -> &'a Value {
    let own = &container["securityContext"][key];
    if own.is_null() {
        &pod_spec["securityContext"][key]
    } else {
        own
    }
}

/// The pod volume a container's mount names.
fn volume<'a>(pod_spec: &'a Value, mount: &Value) -> &'a Value {
    let name = text(&mount["name"], "volumeMounts[].name");
    items(&pod_spec["volumes"])
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("volumeMount {name:?} names no volume of the pod"))
}

/// The container port a probe or Service names, by name or number.
fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = text(port, "port");
    items(&container["ports"])
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("port {name:?} is not a named port of the container"))
}

fn gateway_deployment(docs: &[Value]) -> &Value {
    object(docs, "Deployment", "wif-gateway")
}

fn gateway_container(deployment: &Value) -> &Value {
    items(&deployment["spec"]["template"]["spec"]["containers"])
        .iter()
        .find(|c| c["name"].as_str() == Some("wif-gateway"))
        .expect("Deployment wif-gateway has no container named wif-gateway")
}

/// Every `*.toml` entry of every ConfigMap in `configmap.yaml`, as (ConfigMap, key, text).
fn configmap_tomls() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for cm in kubernetes("configmap.yaml") {
        let name = text(&cm["metadata"]["name"], "ConfigMap metadata.name").to_owned();
        let data = cm["data"]
            .as_mapping()
            .unwrap_or_else(|| panic!("ConfigMap {name} has no data"));
        for (key, value) in data {
            let key = text(key, "ConfigMap data key");
            if key.ends_with(".toml") {
                let body = text(value, &format!("ConfigMap {name} data.{key}"));
                out.push((name.clone(), key.to_owned(), body.to_owned()));
            }
        }
    }
    out
}

/// The `[[federations]]`, `[[service_accounts]]` and `[[federated_credentials]]` tables of every
/// gateway file the ConfigMaps hold.
#[derive(Default)]
struct DirectoryItems {
    federations: Vec<toml::Table>,
    service_accounts: Vec<toml::Table>,
    credentials: Vec<toml::Table>,
}

impl DirectoryItems {
    fn of_configmaps() -> DirectoryItems {
        let mut all = DirectoryItems::default();
        for (cm, key, body) in configmap_tomls() {
            let table: toml::Table = toml::from_str(&body)
                .unwrap_or_else(|e| panic!("ConfigMap {cm} data.{key} is not TOML: {e}"));
            let list = |name: &str| -> Vec<toml::Table> {
                table
                    .get(name)
                    .and_then(toml::Value::as_array)
                    .map(|a| a.iter().filter_map(|v| v.as_table().cloned()).collect())
                    .unwrap_or_default()
            };
            all.federations.extend(list("federations"));
            all.service_accounts.extend(list("service_accounts"));
            all.credentials.extend(list("federated_credentials"));
        }
        all
    }

    /// Asserts that a federation trusting (`issuer`, `audience`) binds `subject` to
    /// `service_account`, and returns that federation.
    fn assert_binds(
        &self,
        who: &str,
        issuer: Option<&str>,
        audience: &str,
        subject: &str,
        service_account: &str,
    ) -> &toml::Table {
        let s =
            |t: &toml::Table, k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_owned);
        let trusting: Vec<&toml::Table> = self
            .federations
            .iter()
            .filter(|f| issuer.is_none() || s(f, "issuer").as_deref() == issuer)
            .filter(|f| {
                f.get("audiences")
                    .and_then(toml::Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(audience)))
            })
            .collect();
        assert!(
            !trusting.is_empty(),
            "{who}: no federation of configmap.yaml trusts audience {audience:?} (issuer {issuer:?})"
        );
        trusting
            .into_iter()
            .find(|f| {
                let id = s(f, "id");
                self.credentials.iter().any(|c| {
                    s(c, "federation_id") == id
                        && s(c, "service_account_id").as_deref() == Some(service_account)
                        && s(c, "external_subject_id").as_deref() == Some(subject)
                })
            })
            .unwrap_or_else(|| {
                panic!(
                    "{who}: no federated credential of configmap.yaml binds subject {subject:?} of a \
                     federation trusting {audience:?} to service account {service_account:?}"
                )
            })
    }
}

// ---- every file parses ---------------------------------------------------------------------

#[test]
fn every_yaml_file_under_deploy_parses() {
    let files = files_under(&repo().join("deploy"), &["yaml", "yml"]);
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(repo())
                .expect("under the repository")
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "deploy/kubernetes/deployment.yaml",
        "deploy/kubernetes/service.yaml",
        "deploy/kubernetes/configmap.yaml",
        "deploy/kubernetes/secret.example.yaml",
        "deploy/kubernetes/pdb.yaml",
        "deploy/kubernetes/client-pod.yaml",
        "deploy/kubernetes/lockbox-demo.yaml",
        "deploy/gitlab-ci.example.yml",
    ] {
        assert!(
            names.contains(expected),
            "{expected} is missing: found {names:?}"
        );
    }
    for file in &files {
        let docs = yaml_documents(file);
        assert!(!docs.is_empty(), "{}: no YAML document", file.display());
        if file.starts_with(repo().join("deploy/kubernetes")) {
            for (i, doc) in docs.iter().enumerate() {
                for key in ["apiVersion", "kind"] {
                    assert!(
                        doc[key].as_str().is_some_and(|s| !s.is_empty()),
                        "{} document {i}: no {key}",
                        file.display()
                    );
                }
                assert!(
                    doc["metadata"]["name"].as_str().is_some(),
                    "{} document {i}: no metadata.name",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn every_toml_file_under_deploy_and_config_parses() {
    let mut files = files_under(&repo().join("deploy"), &["toml"]);
    files.extend(files_under(&repo().join("config"), &["toml"]));
    assert!(
        files.len() >= 3,
        "expected at least deploy/gateway.example.toml, deploy/federations/example.toml and \
         config/dev.toml, found {files:?}"
    );
    for file in &files {
        if let Err(e) = toml::from_str::<toml::Table>(&read(file)) {
            panic!("{} is not valid TOML: {e}", file.display());
        }
    }
    let embedded = configmap_tomls();
    assert!(!embedded.is_empty(), "configmap.yaml holds no *.toml entry");
    for (cm, key, body) in embedded {
        if let Err(e) = toml::from_str::<toml::Table>(&body) {
            panic!("ConfigMap {cm} data.{key} is not valid TOML: {e}");
        }
    }
}

// ---- every gateway configuration loads -------------------------------------------------------

#[test]
fn the_example_and_dev_configurations_load() {
    for file in ["deploy/gateway.example.toml", "config/dev.toml"] {
        let config = wif_gateway::config::load(&repo().join(file))
            .unwrap_or_else(|e| panic!("{file} does not load: {e}"));
        assert!(
            !config.directory.federation_count() > 0,
            "{file}: loads, but with no federation (is its include still found?)"
        );
    }
}

/// Writes a volume's files under `dir` as the kubelet does: the files in a timestamped
/// directory, `..data` pointing at it, and each top-level entry a symlink through `..data`. The
/// loader meets the same directory entries as in a pod (`..data` and the timestamped directory
/// must not be taken for configuration files).
fn project_volume(dir: &Path, files: &[(String, String)]) {
    std::fs::create_dir_all(dir).expect("volume directory");
    #[cfg(unix)]
    {
        let stamp = "..2026_01_01_00_00_00.000000001";
        for (path, body) in files {
            let target = dir.join(stamp).join(path);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("data directory");
            std::fs::write(&target, body).expect("volume file");
        }
        std::os::unix::fs::symlink(stamp, dir.join("..data")).expect("..data symlink");
        let tops: BTreeSet<&str> = files
            .iter()
            .filter_map(|(path, _)| path.split('/').next())
            .collect();
        for top in tops {
            std::os::unix::fs::symlink(Path::new("..data").join(top), dir.join(top))
                .expect("entry symlink");
        }
    }
    #[cfg(not(unix))]
    for (path, body) in files {
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("data directory");
        std::fs::write(&target, body).expect("volume file");
    }
}

#[test]
fn the_configmaps_load_as_the_deployment_mounts_them() {
    let deployment_docs = kubernetes("deployment.yaml");
    let deployment = gateway_deployment(&deployment_docs);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = gateway_container(deployment);
    let configmaps = kubernetes("configmap.yaml");
    let secrets = kubernetes("secret.example.yaml");

    let root = tempfile::tempdir().expect("temp dir");
    let mut mounts: Vec<&Value> = items(&container["volumeMounts"]).iter().collect();
    // Parents first: the federations directory is mounted inside the config directory.
    mounts.sort_by_key(|m| m["mountPath"].as_str().unwrap_or_default().len());
    let mut mounted_configmaps = BTreeSet::new();
    let mut keys_mount: Option<(&str, &Value)> = None;
    for mount in mounts {
        let path = text(&mount["mountPath"], "volumeMounts[].mountPath");
        let vol = volume(pod, mount);
        if let Some(cm_name) = vol["configMap"]["name"].as_str() {
            mounted_configmaps.insert(cm_name.to_owned());
            let cm = object(&configmaps, "ConfigMap", cm_name);
            let data = cm["data"]
                .as_mapping()
                .unwrap_or_else(|| panic!("ConfigMap {cm_name} has no data"));
            let value_of = |key: &str| -> String {
                text(
                    data.get(key)
                        .unwrap_or_else(|| panic!("ConfigMap {cm_name} has no key {key:?}")),
                    key,
                )
                .to_owned()
            };
            let files: Vec<(String, String)> = match vol["configMap"]["items"].as_sequence() {
                Some(listed) => listed
                    .iter()
                    .map(|item| {
                        let key = text(&item["key"], "configMap items[].key");
                        let to = text(&item["path"], "configMap items[].path");
                        (to.to_owned(), value_of(key))
                    })
                    .collect(),
                None => data
                    .keys()
                    .map(|k| {
                        let k = text(k, "ConfigMap data key");
                        (k.to_owned(), value_of(k))
                    })
                    .collect(),
            };
            project_volume(&root.path().join(path.trim_start_matches('/')), &files);
        } else if !vol["secret"].is_null() {
            keys_mount = Some((path, &vol["secret"]));
        }
    }
    for cm in &configmaps {
        let name = text(&cm["metadata"]["name"], "ConfigMap metadata.name");
        assert!(
            mounted_configmaps.contains(name),
            "ConfigMap {name} of configmap.yaml is not mounted by deployment.yaml"
        );
    }

    let args = strings(&container["args"]);
    let config_arg = flag(&args, "--config", "Deployment wif-gateway container args");
    let config_path = root.path().join(config_arg.trim_start_matches('/'));
    let config = wif_gateway::config::load(&config_path).unwrap_or_else(|e| {
        panic!("the ConfigMaps, mounted as deployment.yaml mounts them, do not load: {e}")
    });

    let expected = DirectoryItems::of_configmaps();
    let d = &config.directory;
    assert_eq!(
        (
            d.federation_count(),
            d.service_account_count(),
            d.credential_count()
        ),
        (
            expected.federations.len(),
            expected.service_accounts.len(),
            expected.credentials.len()
        ),
        "(federations, service accounts, credentials) loaded differ from those of configmap.yaml: \
         is every federation file included?"
    );
    assert!(
        d.federation_count() >= 2,
        "configmap.yaml should show a Kubernetes and a GitLab federation"
    );

    let s = &config.settings;
    assert!(
        s.listen.ip().is_unspecified(),
        "gateway.toml listens on {}: unreachable from outside the pod, listen on 0.0.0.0",
        s.listen
    );
    let http_port = container_port(container, &Value::String("http".into()));
    assert_eq!(
        u64::from(s.listen.port()),
        http_port,
        "gateway.toml listens on port {}, the container declares {http_port}",
        s.listen.port()
    );
    assert!(
        s.public_url.starts_with("https://"),
        "public_url {} should be the https URL of the TLS-terminating front",
        s.public_url
    );
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    assert!(
        s.shutdown_timeout_seconds < grace,
        "shutdown_timeout_seconds {} must be below terminationGracePeriodSeconds {grace}, or \
         in-flight requests are killed",
        s.shutdown_timeout_seconds
    );

    // The key files are files of the signing-key Secret, as mounted.
    let (keys_path, secret_volume) =
        keys_mount.expect("deployment.yaml mounts no Secret (the signing keys)");
    let secret_name = text(&secret_volume["secretName"], "secret.secretName");
    let secret = object(&secrets, "Secret", secret_name);
    let secret_keys: BTreeSet<&str> = ["stringData", "data"]
        .iter()
        .filter_map(|k| secret[*k].as_mapping())
        .flat_map(|m| m.keys().filter_map(Value::as_str))
        .collect();
    let key_files = std::iter::once(&s.signing_key_file).chain(&s.published_key_files);
    for key_file in key_files {
        let dir = key_file.parent().expect("key file directory");
        let name = key_file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            dir == Path::new(keys_path) && secret_keys.contains(name),
            "key file {} is not one of the Secret {secret_name} mounted at {keys_path} (keys \
             {secret_keys:?})",
            key_file.display()
        );
    }
}

// ---- Kubernetes ------------------------------------------------------------------------------

#[test]
fn the_deployment_runs_two_hardened_replicas() {
    let docs = kubernetes("deployment.yaml");
    let deployment = gateway_deployment(&docs);
    let pod = &deployment["spec"]["template"]["spec"];
    let c = gateway_container(deployment);

    assert_eq!(
        deployment["spec"]["replicas"].as_u64(),
        Some(2),
        "Deployment wif-gateway: spec.replicas must be 2"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(
            get["path"].as_str(),
            Some(path),
            "{probe} must be an httpGet of {path}, is {:?}",
            c[probe]
        );
        assert_eq!(
            container_port(c, &get["port"]),
            8080,
            "{probe} must probe the gateway's port 8080"
        );
    }
    for (kind, resource) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "memory"),
    ] {
        assert!(
            !c["resources"][kind][resource].is_null(),
            "container resources.{kind}.{resource} is not set"
        );
    }

    assert_eq!(
        effective(c, pod, "runAsNonRoot").as_bool(),
        Some(true),
        "runAsNonRoot must be true (container or pod securityContext)"
    );
    assert_eq!(
        effective(c, pod, "runAsUser").as_u64(),
        Some(65532),
        "runAsUser must be 65532, the image's user"
    );
    assert_eq!(
        effective(c, pod, "seccompProfile")["type"].as_str(),
        Some("RuntimeDefault"),
        "seccompProfile must be RuntimeDefault"
    );
    let sc = &c["securityContext"];
    assert_eq!(
        sc["readOnlyRootFilesystem"].as_bool(),
        Some(true),
        "container securityContext.readOnlyRootFilesystem must be true"
    );
    assert_eq!(
        sc["allowPrivilegeEscalation"].as_bool(),
        Some(false),
        "container securityContext.allowPrivilegeEscalation must be false"
    );
    assert!(
        strings(&sc["capabilities"]["drop"]).contains(&"ALL"),
        "container securityContext.capabilities.drop must contain ALL, is {:?}",
        sc["capabilities"]
    );

    let mounts = items(&c["volumeMounts"]);
    for mount in mounts {
        assert!(
            mount["subPath"].is_null() && mount["subPathExpr"].is_null(),
            "volumeMount {:?} uses subPath: subPath mounts never see ConfigMap or Secret updates",
            mount["name"]
        );
    }
    let mount_of = |what: &str, pick: &dyn Fn(&Value) -> bool| -> &str {
        mounts
            .iter()
            .find(|m| pick(volume(pod, m)))
            .map(|m| text(&m["mountPath"], "mountPath"))
            .unwrap_or_else(|| panic!("the gateway container does not mount {what}"))
    };
    let config_dir = mount_of("ConfigMap wif-gateway-config", &|v| {
        v["configMap"]["name"].as_str() == Some("wif-gateway-config")
    });
    assert_eq!(
        config_dir, "/etc/wif-gateway",
        "ConfigMap wif-gateway-config mount"
    );
    let federations = mount_of("ConfigMap wif-gateway-federations", &|v| {
        v["configMap"]["name"].as_str() == Some("wif-gateway-federations")
    });
    assert_eq!(
        federations, "/etc/wif-gateway/federations",
        "ConfigMap wif-gateway-federations must be mounted as the federations directory"
    );
    let keys = mount_of("Secret wif-gateway-signing-keys", &|v| {
        v["secret"]["secretName"].as_str() == Some("wif-gateway-signing-keys")
    });
    assert_eq!(
        keys, "/etc/wif-gateway/keys",
        "Secret wif-gateway-signing-keys mount"
    );

    let spreads_over_nodes = items(&pod["topologySpreadConstraints"])
        .iter()
        .any(|t| t["topologyKey"].as_str() == Some("kubernetes.io/hostname"))
        || items(
            &pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
        )
        .iter()
        .chain(items(
            &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"],
        ))
        .any(|t| {
            t["topologyKey"].as_str() == Some("kubernetes.io/hostname")
                || t["podAffinityTerm"]["topologyKey"].as_str() == Some("kubernetes.io/hostname")
        });
    assert!(
        spreads_over_nodes,
        "replicas must be spread across nodes (topologySpreadConstraints or podAntiAffinity on \
         kubernetes.io/hostname)"
    );
    assert_eq!(
        pod["terminationGracePeriodSeconds"].as_u64(),
        Some(30),
        "terminationGracePeriodSeconds must be 30"
    );
}

#[test]
fn the_service_and_budget_select_the_deployment() {
    let deployment_docs = kubernetes("deployment.yaml");
    let deployment = gateway_deployment(&deployment_docs);
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let namespace = deployment["metadata"]["namespace"].as_str();
    let selects_pods = |selector: &Value, who: &str| {
        let selector = selector
            .as_mapping()
            .unwrap_or_else(|| panic!("{who}: no selector"));
        assert!(!selector.is_empty(), "{who}: empty selector");
        for (k, v) in selector {
            assert_eq!(
                &labels[text(k, "label")],
                v,
                "{who}: selector {k:?} misses the pods"
            );
        }
    };

    let service_docs = kubernetes("service.yaml");
    let service = object(&service_docs, "Service", "wif-gateway");
    assert_eq!(
        service["metadata"]["namespace"].as_str(),
        namespace,
        "Service namespace"
    );
    assert_eq!(
        service["spec"]["type"].as_str(),
        Some("ClusterIP"),
        "Service type"
    );
    selects_pods(&service["spec"]["selector"], "Service wif-gateway");
    let port = items(&service["spec"]["ports"])
        .iter()
        .find(|p| p["port"].as_u64() == Some(80))
        .expect("Service wif-gateway has no port 80");
    assert_eq!(
        container_port(gateway_container(deployment), &port["targetPort"]),
        8080,
        "Service port 80 must forward to the container's 8080"
    );

    let pdb_docs = kubernetes("pdb.yaml");
    let pdb = only(&pdb_docs, "PodDisruptionBudget");
    assert_eq!(
        pdb["metadata"]["namespace"].as_str(),
        namespace,
        "PDB namespace"
    );
    assert_eq!(
        pdb["spec"]["minAvailable"].as_u64(),
        Some(1),
        "PDB minAvailable"
    );
    selects_pods(
        &pdb["spec"]["selector"]["matchLabels"],
        "PodDisruptionBudget",
    );
}

#[test]
fn the_client_pod_exchanges_a_projected_token_the_configmaps_trust() {
    let docs = kubernetes("client-pod.yaml");
    let pod = only(&docs, "Pod");
    let spec = &pod["spec"];
    let containers: Vec<&Value> = items(&spec["initContainers"])
        .iter()
        .chain(items(&spec["containers"]))
        .collect();

    let (token_volume, projected) = items(&spec["volumes"])
        .iter()
        .find_map(|v| {
            items(&v["projected"]["sources"])
                .iter()
                .find(|s| !s["serviceAccountToken"].is_null())
                .map(|s| (text(&v["name"], "volume name"), &s["serviceAccountToken"]))
        })
        .expect("client-pod.yaml: no projected serviceAccountToken volume");
    let audience = projected["audience"]
        .as_str()
        .filter(|a| !a.is_empty())
        .expect("the projected serviceAccountToken must name an audience (the federation's)");
    let lifetime = projected["expirationSeconds"]
        .as_u64()
        .expect("the projected serviceAccountToken must set expirationSeconds");
    let token_name = text(&projected["path"], "serviceAccountToken.path");

    let sidecar = containers
        .iter()
        .find(|c| {
            let mut words = strings(&c["command"]);
            words.extend(strings(&c["args"]));
            words.contains(&"exchange")
        })
        .expect("client-pod.yaml: no container runs `wif-gateway exchange`");
    let mut args = strings(&sidecar["command"]);
    args.extend(strings(&sidecar["args"]));
    assert!(
        args.contains(&"--refresh"),
        "the exchange sidecar must keep the token fresh (--refresh): {args:?}"
    );

    let mount_path = |c: &Value, volume_name: &str| -> Option<String> {
        items(&c["volumeMounts"])
            .iter()
            .find(|m| m["name"].as_str() == Some(volume_name))
            .and_then(|m| m["mountPath"].as_str())
            .map(str::to_owned)
    };
    let token_dir = mount_path(sidecar, token_volume)
        .expect("the exchange sidecar does not mount the projected token volume");
    assert_eq!(
        flag(&args, "--token-file", "exchange sidecar"),
        format!("{token_dir}/{token_name}"),
        "--token-file must be the projected token as mounted"
    );

    let out = flag(&args, "--out", "exchange sidecar");
    let out_dir = Path::new(out).parent().expect("--out has a directory");
    let shared = items(&spec["volumes"])
        .iter()
        .find(|v| {
            let name = v["name"].as_str().unwrap_or_default();
            mount_path(sidecar, name).is_some_and(|p| Path::new(&p) == out_dir)
        })
        .unwrap_or_else(|| panic!("--out {out} is not in a volume of the sidecar"));
    assert_eq!(
        shared["emptyDir"]["medium"].as_str(),
        Some("Memory"),
        "the access token's volume must be an emptyDir with medium Memory"
    );
    let shared_name = text(&shared["name"], "volume name");
    assert!(
        containers
            .iter()
            .any(|c| !std::ptr::eq(*c, *sidecar) && mount_path(c, shared_name).is_some()),
        "no app container mounts the access token's volume {shared_name:?}"
    );

    // The gateway the sidecar calls is the Service of service.yaml.
    let service_docs = kubernetes("service.yaml");
    let service = object(&service_docs, "Service", "wif-gateway");
    let url = url::Url::parse(flag(&args, "--url", "exchange sidecar")).expect("--url is a URL");
    let expected_host = format!(
        "{}.{}.svc",
        text(&service["metadata"]["name"], "Service name"),
        text(&service["metadata"]["namespace"], "Service namespace")
    );
    assert_eq!(url.host_str(), Some(expected_host.as_str()), "--url host");
    assert_eq!(
        url.port_or_known_default(),
        Some(80),
        "--url port: the Service's 80"
    );

    // And the ConfigMaps bind this pod's subject to the service account it asks for.
    let subject = format!(
        "system:serviceaccount:{}:{}",
        pod["metadata"]["namespace"].as_str().unwrap_or("default"),
        spec["serviceAccountName"].as_str().unwrap_or("default")
    );
    let account = flag(&args, "--service-account", "exchange sidecar");
    let directory = DirectoryItems::of_configmaps();
    let federation = directory.assert_binds(
        "client-pod.yaml",
        Some("https://kubernetes.default.svc.cluster.local"),
        audience,
        &subject,
        account,
    );
    let max_lifetime = federation
        .get("max_token_lifetime_seconds")
        .and_then(toml::Value::as_integer)
        .unwrap_or(86_400);
    assert!(
        i64::try_from(lifetime).is_ok_and(|l| l <= max_lifetime),
        "projected tokens live {lifetime} s, over the federation's max_token_lifetime_seconds \
         {max_lifetime}"
    );
}

/// The flags `examples/lockbox.rs` reads, from its argument parser's match arms.
fn lockbox_flags() -> BTreeSet<String> {
    read(&repo().join("examples/lockbox.rs"))
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            l.strip_prefix("\"--")
                .and_then(|rest| rest.split_once("\" =>"))
                .map(|(name, _)| format!("--{name}"))
        })
        .collect()
}

#[test]
fn the_lockbox_demo_runs_the_example_service_hardened_beside_the_tutorial_pod() {
    let docs = kubernetes("lockbox-demo.yaml");
    let deployment = object(&docs, "Deployment", "lockbox-demo");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = items(&pod["containers"])
        .iter()
        .find(|c| c["name"].as_str() == Some("lockbox-demo"))
        .expect("Deployment lockbox-demo has no container named lockbox-demo");
    let args = strings(&c["args"]);

    // Only flags the example has, and every one it requires.
    let known = lockbox_flags();
    for required in ["--gateway", "--listen", "--secrets", "--key-file"] {
        assert!(
            known.contains(required),
            "examples/lockbox.rs lost {required}"
        );
        flag(&args, required, "lockbox-demo");
    }
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            known.contains(*arg),
            "lockbox-demo passes {arg}, which examples/lockbox.rs does not read ({known:?})"
        );
    }

    // It listens where its container port, probe and Service point.
    let listen: std::net::SocketAddr = flag(&args, "--listen", "lockbox-demo")
        .parse()
        .expect("--listen is an address");
    assert!(
        listen.ip().is_unspecified(),
        "--listen must accept connections from the Service, not {listen}"
    );
    assert_eq!(
        container_port(c, &Value::String("http".into())),
        u64::from(listen.port()),
        "the container port named http must be --listen's port"
    );
    assert_eq!(
        container_port(c, &c["readinessProbe"]["tcpSocket"]["port"]),
        u64::from(listen.port()),
        "the readiness probe must connect to --listen's port"
    );
    let service = object(&docs, "Service", "lockbox-demo");
    assert_eq!(
        service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"],
        "Service lockbox-demo must select the demo's pods"
    );
    let service_port = items(&service["spec"]["ports"])
        .first()
        .expect("Service lockbox-demo has a port");
    assert_eq!(
        container_port(c, &service_port["targetPort"]),
        u64::from(listen.port()),
        "Service lockbox-demo must forward to --listen's port"
    );

    // It asks the gateway of service.yaml.
    let gateway_services = kubernetes("service.yaml");
    let gateway = object(&gateway_services, "Service", "wif-gateway");
    let url = url::Url::parse(flag(&args, "--gateway", "lockbox-demo")).expect("--gateway URL");
    assert_eq!(
        url.host_str().map(str::to_owned),
        Some(format!(
            "{}.{}.svc",
            text(&gateway["metadata"]["name"], "Service name"),
            text(&gateway["metadata"]["namespace"], "Service namespace")
        )),
        "--gateway must be the gateway's Service"
    );

    // --secrets and --key-file are files of its volumes; the secrets file is in the example's
    // format and the key comes from a Secret, never a ConfigMap.
    let mounted = |path: &str| -> (&Value, String) {
        let path = Path::new(path);
        items(&c["volumeMounts"])
            .iter()
            .filter(|m| path.parent() == Some(Path::new(text(&m["mountPath"], "mountPath"))))
            .map(|m| {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                (volume(pod, m), name.to_owned())
            })
            .next()
            .unwrap_or_else(|| panic!("{} is in no volume of the container", path.display()))
    };
    let (secrets, file) = mounted(flag(&args, "--secrets", "lockbox-demo"));
    let config_map = object(
        &docs,
        "ConfigMap",
        text(
            &secrets["configMap"]["name"],
            "--secrets' volume must be a ConfigMap",
        ),
    );
    assert!(
        items(&secrets["configMap"]["items"])
            .iter()
            .any(|i| i["path"].as_str() == Some(&file) && i["key"].as_str() == Some(&file)),
        "the ConfigMap volume must project {file}"
    );
    let toml: toml::Table = text(&config_map["data"][file.as_str()], "secrets.toml")
        .parse()
        .expect("secrets.toml is TOML");
    let secrets = toml["secrets"].as_array().expect("[[secrets]]");
    assert!(!secrets.is_empty(), "secrets.toml has no secret");
    for secret in secrets {
        for key in ["id", "folder_id", "version_id"] {
            assert!(secret[key].is_str(), "every secret has a {key}: {secret:?}");
        }
        let entries = secret["entries"].as_array().expect("[[secrets.entries]]");
        assert!(
            entries
                .iter()
                .all(|e| e["key"].is_str() && e.get("text_value").is_some()),
            "every entry has a key and a value: {entries:?}"
        );
    }
    let (key, file) = mounted(flag(&args, "--key-file", "lockbox-demo"));
    assert!(
        items(&key["secret"]["items"])
            .iter()
            .any(|i| i["path"].as_str() == Some(&file)),
        "--key-file must be a file of a Secret volume: {key:?}"
    );
    // Kubernetes reads YAML 1.1, where a leading 0 is octal; the parser here leaves it text.
    let mode = &key["secret"]["defaultMode"];
    let mode = mode.as_u64().or_else(|| {
        mode.as_str()
            .and_then(|m| u64::from_str_radix(m.strip_prefix('0')?, 8).ok())
    });
    assert_eq!(
        mode,
        Some(0o440),
        "the key must be readable by its owner and group only"
    );

    // Hardened as the gateway is.
    for (setting, expected) in [
        ("runAsNonRoot", Value::Bool(true)),
        ("readOnlyRootFilesystem", Value::Bool(true)),
        ("allowPrivilegeEscalation", Value::Bool(false)),
    ] {
        assert_eq!(
            effective(c, pod, setting),
            &expected,
            "lockbox-demo: {setting} must be {expected:?}"
        );
    }
    assert_eq!(effective(c, pod, "runAsUser").as_u64(), Some(65532));
    assert_eq!(
        strings(&c["securityContext"]["capabilities"]["drop"]),
        ["ALL"]
    );
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));

    // The image is the Dockerfile's lockbox-demo stage, which runs the example.
    let stage: Vec<(String, String)> = dockerfile()
        .into_iter()
        .skip_while(|(k, a)| !(k == "FROM" && a.ends_with(" AS lockbox-demo")))
        .take_while({
            let mut first = true;
            move |(k, _)| std::mem::take(&mut first) || k != "FROM"
        })
        .collect();
    assert!(
        !stage.is_empty(),
        "deploy/Dockerfile has no lockbox-demo stage"
    );
    assert!(
        stage
            .iter()
            .any(|(k, a)| k == "COPY" && a.contains("target/release/examples/lockbox")),
        "the lockbox-demo stage must copy the example's release binary: {stage:?}"
    );
    assert!(
        stage.iter().any(|(k, a)| k == "USER" && a == "65532:65532"),
        "the lockbox-demo stage must run as 65532"
    );
    assert_eq!(
        stage
            .iter()
            .rev()
            .find(|(k, _)| k == "ENTRYPOINT")
            .map(|(_, a)| exec_form(a, "ENTRYPOINT")),
        Some(vec!["/usr/local/bin/lockbox".to_owned()])
    );

    // The tutorial's pod: service account wlif in default, a token for ycaud at the path its
    // `kubectl exec … cat` reads.
    let pod = object(&docs, "Pod", "test-wlif");
    assert_eq!(pod["metadata"]["namespace"].as_str(), Some("default"));
    assert_eq!(pod["spec"]["serviceAccountName"].as_str(), Some("wlif"));
    object(&docs, "ServiceAccount", "wlif");
    let container = &items(&pod["spec"]["containers"])[0];
    let mount = items(&container["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"].as_str() == Some("/var/run/secrets/tokens"))
        .expect("test-wlif mounts /var/run/secrets/tokens");
    let token = items(&volume(&pod["spec"], mount)["projected"]["sources"])
        .iter()
        .find_map(|s| s.get("serviceAccountToken"))
        .expect("a projected serviceAccountToken");
    assert_eq!(token["path"].as_str(), Some("sa-token"));
    assert_eq!(token["audience"].as_str(), Some("ycaud"));
    assert_eq!(token["expirationSeconds"].as_u64(), Some(7200));
}

/// The options the examples pass to `wif-gateway exchange` are options of the real command.
#[test]
fn the_examples_use_options_the_exchange_command_has() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_wif-gateway"))
        .args(["exchange", "--help"])
        .output()
        .expect("running wif-gateway exchange --help");
    assert!(help.status.success(), "wif-gateway exchange --help failed");
    let help = String::from_utf8_lossy(&help.stdout);

    let docs = kubernetes("client-pod.yaml");
    let spec = &only(&docs, "Pod")["spec"];
    let mut used: Vec<String> = items(&spec["initContainers"])
        .iter()
        .chain(items(&spec["containers"]))
        .flat_map(|c| strings(&c["args"]))
        .map(str::to_owned)
        .collect();
    let ci = read(&repo().join("deploy/gitlab-ci.example.yml"));
    let mut words = ci.split_whitespace();
    while let Some(word) = words.next() {
        if word == "wif-gateway" && words.clone().next() == Some("exchange") {
            used.extend(
                words
                    .clone()
                    .take_while(|w| !w.starts_with('#'))
                    .map(str::to_owned),
            );
        }
    }
    let options: BTreeSet<&str> = used
        .iter()
        .map(|w| w.as_str())
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(
        options.contains("--refresh") && options.contains("--token-env"),
        "expected the examples' exchange options, found {options:?}"
    );
    for option in options {
        assert!(
            help.split_whitespace().any(|w| w == option),
            "the examples pass {option} to `wif-gateway exchange`, which has no such option"
        );
    }
}

// ---- GitLab CI -------------------------------------------------------------------------------

/// The Yandex Cloud tutorial's exchange (GitLab variant), with its host as the only change.
const TUTORIAL_CURL: &str = r#"curl -sH "Content-Type: application/x-www-form-urlencoded" -d "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:access_token&audience=$SA_ID&subject_token=${WIF_TOKEN}&subject_token_type=urn:ietf:params:oauth:token-type:id_token" -X POST $WIF_GATEWAY/oauth/token | jq -r '.access_token'"#;

#[test]
fn the_gitlab_jobs_exchange_their_id_token() {
    let docs = yaml_documents(&repo().join("deploy/gitlab-ci.example.yml"));
    let pipeline = docs[0]
        .as_mapping()
        .expect("gitlab-ci.example.yml is a mapping");
    let jobs: Vec<(&str, &Value)> = pipeline
        .iter()
        .filter(|(_, v)| !v["script"].is_null())
        .map(|(k, v)| (text(k, "job name"), v))
        .collect();
    let script = |job: &Value| -> String {
        strings(&job["script"])
            .join("\n")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let directory = DirectoryItems::of_configmaps();
    for (name, job) in &jobs {
        if let Some(tokens) = job["id_tokens"].as_mapping() {
            for (var, token) in tokens {
                let aud = text(&token["aud"], "id_tokens aud");
                assert!(
                    directory.federations.iter().any(|f| {
                        f.get("audiences")
                            .and_then(toml::Value::as_array)
                            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(aud)))
                    }),
                    "job {name}: id_tokens {var:?} aud {aud:?} is trusted by no federation of \
                     configmap.yaml"
                );
            }
        }
    }

    let with_id_token = |job: &Value| {
        job["id_tokens"]["WIF_TOKEN"]["aud"].as_str() == Some("https://gitlab.example.com")
    };
    assert!(
        jobs.iter()
            .any(|(_, j)| with_id_token(j) && script(j).contains(TUTORIAL_CURL)),
        "no job with id_tokens WIF_TOKEN (aud https://gitlab.example.com) runs the tutorial \
         curl with only the host changed:\n{TUTORIAL_CURL}"
    );
    let client_job = jobs
        .iter()
        .find(|(_, j)| script(j).contains("wif-gateway exchange"))
        .map(|(_, j)| *j)
        .expect("no job runs `wif-gateway exchange`");
    assert!(
        with_id_token(client_job),
        "the `wif-gateway exchange` job needs id_tokens WIF_TOKEN"
    );
    assert!(
        script(client_job).contains("--token-env WIF_TOKEN"),
        "the `wif-gateway exchange` job must read the ID token with --token-env WIF_TOKEN"
    );
    assert!(
        text(&client_job["image"]["name"], "image.name").ends_with("/wif-gateway:latest"),
        "the `wif-gateway exchange` job must run the gateway image"
    );
    assert_eq!(
        strings(&client_job["image"]["entrypoint"]),
        [""],
        "the gateway image's entrypoint must be overridden to [\"\"] for the runner's shell"
    );
}

// ---- Dockerfile ------------------------------------------------------------------------------

/// The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments
/// dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in read(&repo().join("deploy/Dockerfile")).lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        out.push((keyword.to_ascii_uppercase(), args.trim().to_owned()));
    }
    out
}

fn exec_form(args: &str, what: &str) -> Vec<String> {
    serde_json::from_str(args)
        .unwrap_or_else(|e| panic!("{what} must be in exec form (a JSON array): {args}: {e}"))
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_unprivileged() {
    let instructions = dockerfile();
    let stages: Vec<Vec<(String, String)>> = {
        let mut stages: Vec<Vec<(String, String)>> = Vec::new();
        for (k, a) in instructions {
            if k == "FROM" {
                stages.push(Vec::new());
            }
            stages
                .last_mut()
                .expect("the Dockerfile starts with FROM")
                .push((k, a));
        }
        stages
    };
    assert!(stages.len() >= 2, "the Dockerfile must be multi-stage");
    let builder = stages
        .iter()
        .find(|s| {
            let from: Vec<&str> = s[0].1.split_whitespace().collect();
            from.len() == 3 && from[1].eq_ignore_ascii_case("AS") && from[2] == "builder"
        })
        .expect("no `FROM … AS builder` stage");
    assert!(
        builder[0].1.starts_with("rust:"),
        "the builder stage must start from a rust image: {}",
        builder[0].1
    );
    assert!(
        builder
            .iter()
            .any(|(k, a)| k == "RUN" && a.contains("cargo build --release --locked")),
        "the builder stage must run `cargo build --release --locked`"
    );

    let runtime = stages.last().expect("a stage");
    let has = |keyword: &str| -> Vec<&str> {
        runtime
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    assert!(
        runtime[0].1.starts_with("debian:"),
        "the runtime stage must start from debian: {}",
        runtime[0].1
    );
    assert!(
        has("RUN").iter().any(|a| a.contains("ca-certificates")),
        "the runtime stage must install ca-certificates (issuers' keys come over HTTPS)"
    );
    let user = has("USER")
        .last()
        .copied()
        .expect("the runtime stage sets no USER: the gateway would run as root");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid != "root" && uid != "0",
        "the runtime stage's USER must not be root: {user}"
    );
    assert_eq!(
        uid, "65532",
        "USER must be uid 65532, the uid deployment.yaml runs as"
    );

    let copy = has("COPY")
        .into_iter()
        .find(|a| a.starts_with("--from=builder"))
        .expect("the runtime stage copies nothing from the builder");
    let copy_words: Vec<&str> = copy.split_whitespace().collect();
    let (source, dest) = (copy_words[1], copy_words[copy_words.len() - 1]);
    assert!(
        source.ends_with("target/release/wif-gateway"),
        "the runtime stage must copy the release binary: {copy}"
    );
    let entrypoint = exec_form(
        has("ENTRYPOINT").last().expect("no ENTRYPOINT"),
        "ENTRYPOINT",
    );
    assert_eq!(
        entrypoint,
        [format!("{}/wif-gateway", dest.trim_end_matches('/'))],
        "ENTRYPOINT must be the binary the builder stage's COPY installs"
    );
    let cmd = exec_form(has("CMD").last().expect("no CMD"), "CMD");
    assert_eq!(
        &cmd[..2],
        ["serve", "--config"],
        "CMD must be `serve --config …`"
    );
    let deployment_docs = kubernetes("deployment.yaml");
    let deployment_args = strings(&gateway_container(gateway_deployment(&deployment_docs))["args"]);
    assert_eq!(
        cmd, deployment_args,
        "the Dockerfile's CMD and deployment.yaml's args should run the same configuration"
    );
    assert!(
        has("EXPOSE")
            .iter()
            .any(|a| a.split_whitespace().any(|p| p == "8080")),
        "the runtime stage must EXPOSE 8080"
    );

    for (k, a) in stages.iter().flatten() {
        if k == "COPY" || k == "ADD" {
            assert!(
                !a.contains(".pem") && !a.contains(".wif-dev") && !a.contains("keys"),
                "the image must not carry keys: {k} {a}"
            );
        }
        if k == "ENV" || k == "ARG" {
            let upper = a.to_ascii_uppercase();
            assert!(
                ["SECRET", "PASSWORD", "TOKEN", "PRIVATE"]
                    .iter()
                    .all(|w| !upper.contains(w)),
                "the image must not carry secrets: {k} {a}"
            );
        }
    }

    let ignore = read(&repo().join(".dockerignore"));
    let ignored: BTreeSet<&str> = ignore
        .lines()
        .map(|l| l.trim().trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for entry in ["target", "fuzz/target", ".git", ".wif-dev"] {
        assert!(
            ignored.contains(entry),
            ".dockerignore must exclude {entry} from the build context"
        );
    }
}

// ---- systemd ---------------------------------------------------------------------------------

#[test]
fn the_systemd_unit_serves_without_new_privileges() {
    let unit = read(&repo().join("deploy/systemd/wif-gateway.service"));
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let exec_start: Vec<&str> = settings
        .iter()
        .filter(|(k, _)| *k == "ExecStart")
        .map(|(_, v)| *v)
        .collect();
    assert!(
        exec_start.len() == 1 && exec_start[0].contains(" serve --config "),
        "the unit must have one ExecStart running `wif-gateway serve --config …`: {exec_start:?}"
    );
    let no_new_privileges = settings
        .iter()
        .rev()
        .find(|(k, _)| *k == "NoNewPrivileges")
        .map(|(_, v)| v.to_ascii_lowercase());
    assert!(
        no_new_privileges
            .as_deref()
            .is_some_and(|v| ["true", "yes", "1", "on"].contains(&v)),
        "the unit must set NoNewPrivileges=true (any systemd true), has {no_new_privileges:?}"
    );
}
