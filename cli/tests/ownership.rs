//! `palisade review` and `palisade can-i`: the tier-ownership commands (docs/ownership.md) run
//! through the main command, with the exit statuses a pipeline gates on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: app-team}\nrules:\n\
- {apiGroups: [projectcalico.org], resources: [tiers], resourceNames: [app], verbs: [get]}\n\
- {apiGroups: [projectcalico.org], resources: [tier.networkpolicies], resourceNames: ['app.*'], verbs: [get, update]}\n\
- {apiGroups: [projectcalico.org], resources: [networkpolicies], verbs: [get, update]}\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: app-team}\n\
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: app-team}\n\
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]\n";

fn can_i(tier: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("palisade-cli-ownership-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rbac = dir.join("rbac.yaml");
    std::fs::write(&rbac, RBAC).unwrap();
    let name = format!("{tier}.web");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["can-i", "get", "np", &name, "--tier", tier, "--namespace", "shop", "--rbac"])
        .arg(&rbac)
        .args(["--as", "alice"])
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn can_i_answers_as_calicos_authorizer_through_the_main_command() {
    let (code, text) = can_i("app");
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = can_i("security");
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("tier \"security\""), "{text}");
}
