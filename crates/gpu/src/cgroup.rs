//! Who owns a process, from its `/proc/<pid>/cgroup`: a YARN container (and so a Spark
//! executor and its application), a Docker/containerd/CRI-O container, or a systemd unit.
//!
//! NVML reports host PIDs, so this needs the exporter in the host PID namespace, as a
//! systemd service is.

/// The owner labels of one process; empty strings where the cgroup says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// `container_1700000000000_0001_01_000002`.
    pub yarn_container: String,
    /// `application_1700000000000_0001`, derived from the container id.
    pub yarn_application: String,
    /// The 64-hex-digit id of a Docker, containerd or CRI-O container.
    pub container_id: String,
    /// `kiln-node-exporter.service`.
    pub systemd_unit: String,
}

impl Owner {
    /// The non-empty owner labels, as label pairs.
    pub fn labels(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("yarn_container", self.yarn_container.as_str()),
            ("yarn_application", self.yarn_application.as_str()),
            ("container_id", self.container_id.as_str()),
            ("systemd_unit", self.systemd_unit.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
    }
}

/// Reads the owner from the text of `/proc/<pid>/cgroup` (v1 or v2). The unified (v2)
/// line is preferred; with v1 only, the first line that says anything wins.
pub fn parse(text: &str) -> Owner {
    let mut lines: Vec<&str> = text.lines().collect();
    // `0::/path` is the cgroup v2 line; look at it first.
    lines.sort_by_key(|line| !line.starts_with("0::"));
    let mut owner = Owner::default();
    for line in lines {
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        for segment in path.split('/') {
            if owner.yarn_container.is_empty()
                && let Some(ids) = kiln_registry::yarn::parse(segment)
            {
                owner.yarn_application = ids.application;
                owner.yarn_container = ids.container;
            }
            if owner.container_id.is_empty()
                && let Some(id) = container_id(segment)
            {
                owner.container_id = id.to_owned();
            }
            if owner.systemd_unit.is_empty() && segment.ends_with(".service") {
                owner.systemd_unit = segment.to_owned();
            }
        }
        if owner != Owner::default() {
            break;
        }
    }
    owner
}

/// A container runtime's id in a cgroup path segment: `docker-<id>.scope`,
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, or a bare `<id>` (cgroup v1 Docker).
fn container_id(segment: &str) -> Option<&str> {
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    let id = ["docker-", "cri-containerd-", "crio-", "libpod-"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

    #[test]
    fn a_spark_executor_in_a_yarn_container_names_its_container_and_application() {
        let text = "0::/hadoop-yarn/container_e17_1700000000000_0042_01_000003\n";
        let owner = parse(text);
        assert_eq!(
            owner.yarn_container,
            "container_e17_1700000000000_0042_01_000003"
        );
        assert_eq!(owner.yarn_application, "application_1700000000000_0042");
        assert_eq!(owner.container_id, "");
    }

    #[test]
    fn yarn_on_cgroup_v1_is_found_on_any_controller_line() {
        let text = "12:pids:/\n4:cpu,cpuacct:/hadoop-yarn/container_1700000000000_0001_01_000002\n1:name=systemd:/system.slice/hadoop-yarn-nodemanager.service\n";
        let owner = parse(text);
        assert_eq!(
            owner.yarn_container,
            "container_1700000000000_0001_01_000002"
        );
        assert_eq!(owner.yarn_application, "application_1700000000000_0001");
    }

    #[test]
    fn containers_of_each_runtime_are_recognised() {
        for path in [
            format!("0::/system.slice/docker-{ID}.scope"),
            format!("0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-{ID}.scope"),
            format!("0::/kubepods/besteffort/pod1234/crio-{ID}.scope"),
            format!("3:memory:/docker/{ID}"),
        ] {
            assert_eq!(parse(&path).container_id, ID, "{path}");
        }
    }

    #[test]
    fn a_service_is_named_by_its_unit() {
        let owner = parse("0::/system.slice/jupyterhub.service\n");
        assert_eq!(owner.systemd_unit, "jupyterhub.service");
        assert_eq!(
            owner.labels().collect::<Vec<_>>(),
            [("systemd_unit", "jupyterhub.service")]
        );
    }

    #[test]
    fn a_login_session_or_garbage_says_nothing() {
        assert_eq!(
            parse("0::/user.slice/user-1000.slice/session-3.scope\n"),
            Owner::default()
        );
        assert_eq!(parse("not a cgroup file"), Owner::default());
        assert_eq!(parse("0::/container_12_ab_1_2"), Owner::default());
        assert_eq!(parse(""), Owner::default());
    }
}
