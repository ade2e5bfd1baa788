//! YARN's container and application ids, read from a cgroup directory's name: the
//! `yarn_container` and `yarn_application` labels. The GPU exporter (a GPU process's
//! cgroup) and the node exporter (a container's own cgroup) read them with this one rule,
//! so a container's GPU series join its CPU and memory series.

/// The `yarn_container` and `yarn_application` labels of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerId {
    /// `container_1700000000000_0001_01_000002` or `container_e17_1700000000000_0001_01_000002`.
    pub container: String,
    /// `application_1700000000000_0001`.
    pub application: String,
}

/// The ids of a cgroup named `container_[e<epoch>_]<cluster timestamp>_<app>_<attempt>_<n>`,
/// as YARN names the cgroup of each container it launches; `None` for any other name.
pub fn parse(name: &str) -> Option<ContainerId> {
    let (cluster, application) = application_of(name)?;
    Some(ContainerId {
        container: name.to_owned(),
        application: format!("application_{cluster}_{application}"),
    })
}

/// Whether `name` is a container's cgroup, as [`parse`] reads it, without building its ids:
/// for listing a directory of them.
pub fn is_container(name: &str) -> bool {
    application_of(name).is_some()
}

/// The cluster timestamp and application number in a container's name.
fn application_of(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("container_")?;
    let mut fields = rest.split('_').peekable();
    if fields.peek()?.starts_with('e') {
        fields.next();
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut numbers = [""; 4];
    for number in &mut numbers {
        *number = fields.next().filter(|field| digits(field))?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some((numbers[0], numbers[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Option<(String, String)> {
        parse(name).map(|id| (id.container, id.application))
    }

    #[test]
    fn plain_and_epoch_containers_name_their_application() {
        assert_eq!(
            labels("container_1700000000000_0001_01_000002"),
            Some((
                "container_1700000000000_0001_01_000002".into(),
                "application_1700000000000_0001".into()
            ))
        );
        assert_eq!(
            labels("container_e17_1700000000000_0042_01_000003"),
            Some((
                "container_e17_1700000000000_0042_01_000003".into(),
                "application_1700000000000_0042".into()
            ))
        );
    }

    #[test]
    fn other_names_are_not_containers() {
        for name in [
            "container_12_ab_1_2",
            "container_1700000000000_0001_01",
            "container_1700000000000_0001_01_000002_7",
            "container__0001_01_000002_7",
            "application_1700000000000_0001",
            "cgroup.procs",
            "",
        ] {
            assert_eq!(parse(name), None, "{name}");
            assert!(!is_container(name), "{name}");
        }
    }
}
