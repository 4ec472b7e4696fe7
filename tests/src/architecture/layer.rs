use std::fmt;

/// An architectural layer of a Strata workspace.
///
/// A crate's layer follows from the name of the directory that holds its
/// `Cargo.toml`, unless [`Architecture::classify`](super::Architecture::classify)
/// names it explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Entities, value objects and ports; crates in a `domain` directory.
    Domain,
    /// Application services and the HTTP API; crates in an `app-api` directory.
    AppApi,
    /// Adapters behind the domain ports; crates in an `infrastructure` directory.
    Infrastructure,
    /// The backend for the frontend; crates in a `frontend-bff` directory.
    Bff,
    /// Test support and end-to-end tests; crates in a `tests` directory.
    Tests,
    /// The service runtime (Strata's `strata-runtime`): the framework's own
    /// composition root, above the application layer and the adapters; crates in
    /// a `runtime` directory. A service reaches it from its composition root only.
    Runtime,
}

impl Layer {
    /// Every layer, in dependency order from the innermost.
    pub const ALL: [Layer; 6] = [
        Layer::Domain,
        Layer::AppApi,
        Layer::Infrastructure,
        Layer::Bff,
        Layer::Tests,
        Layer::Runtime,
    ];

    /// The directory name that places a crate in this layer.
    pub fn directory(self) -> &'static str {
        match self {
            Layer::Domain => "domain",
            Layer::AppApi => "app-api",
            Layer::Infrastructure => "infrastructure",
            Layer::Bff => "frontend-bff",
            Layer::Tests => "tests",
            Layer::Runtime => "runtime",
        }
    }

    /// The layer whose directory name is `name`, if any.
    pub fn from_directory(name: &str) -> Option<Layer> {
        Layer::ALL
            .into_iter()
            .find(|layer| layer.directory() == name)
    }

    /// Whether a crate of this layer may have a normal or build dependency
    /// on a crate of layer `target`, composition roots aside.
    pub fn may_depend_on(self, target: Layer) -> bool {
        match self {
            Layer::Domain => target == Layer::Domain,
            Layer::AppApi => matches!(target, Layer::Domain | Layer::AppApi),
            Layer::Infrastructure => matches!(target, Layer::Domain | Layer::Infrastructure),
            // The BFF reaches app-api over HTTP, never by linking it.
            Layer::Bff => target == Layer::Bff,
            Layer::Tests => true,
            Layer::Runtime => matches!(
                target,
                Layer::Domain | Layer::AppApi | Layer::Infrastructure | Layer::Runtime
            ),
        }
    }

    pub(crate) fn dependency_explanation(self) -> &'static str {
        match self {
            Layer::Domain => "the domain layer may depend only on other domain crates",
            Layer::AppApi => {
                "the app-api layer may depend only on domain and app-api crates; \
                 only the composition root may wire in infrastructure or frontend-bff crates"
            }
            Layer::Infrastructure => {
                "the infrastructure layer may depend only on domain and infrastructure crates"
            }
            Layer::Bff => {
                "the frontend-bff layer may depend only on other frontend-bff crates; \
                 it talks to app-api over HTTP"
            }
            Layer::Tests => "the tests layer may depend on any crate",
            Layer::Runtime => {
                "the runtime layer may depend only on domain, app-api, infrastructure and \
                 runtime crates"
            }
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.directory())
    }
}
